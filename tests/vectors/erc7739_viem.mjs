// ERC-7739 test vectors for SessionAccount.isValidSignature, computed by viem.
//
// Run (viem 2.57.20 installed in a scratch directory, never in the repository):
//   mkdir -p /tmp/viem-vectors && (cd /tmp/viem-vectors && npm install viem@2.57.20)
//   VIEM_DIR=/tmp/viem-vectors node tests/vectors/erc7739_viem.mjs > tests/vectors/erc7739_viem.json
//
// The owner is the contract tests' key "erc7739-owner" (secret keccak256("sessionward-contract-
// tests:" + label), tests/evm_support.py) and the account is that key's own EIP-7702 account,
// so the verifying contract of the SessionWard domain is the owner's address.
import { createRequire } from 'node:module'
import path from 'node:path'

const require = createRequire(path.join(process.env.VIEM_DIR ?? process.cwd(), 'package.json'))
const viem = require('viem')
const accounts = require('viem/accounts')
const erc7739 = require('viem/experimental/erc7739')
const { version } = require('viem/package.json')

const CHAIN_ID = 1
const ZERO = `0x${'00'.repeat(32)}`
const secret = viem.keccak256(viem.toHex('sessionward-contract-tests:erc7739-owner'))
const owner = accounts.privateKeyToAccount(secret)
const verifierDomain = {
  name: 'SessionWard',
  version: '1',
  chainId: CHAIN_ID,
  verifyingContract: owner.address,
  salt: ZERO,
}

const typedCases = [
  {
    name: 'mail-nested-struct',
    domain: {
      name: 'Ether Mail',
      version: '1',
      chainId: CHAIN_ID,
      verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC',
    },
    types: {
      Person: [
        { name: 'name', type: 'string' },
        { name: 'wallet', type: 'address' },
      ],
      Mail: [
        { name: 'from', type: 'Person' },
        { name: 'to', type: 'Person' },
        { name: 'contents', type: 'string' },
      ],
    },
    primaryType: 'Mail',
    message: {
      from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
      to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
      contents: 'Hello, Bob!',
    },
  },
  {
    name: 'permit2-permit-single',
    domain: {
      name: 'Permit2',
      chainId: CHAIN_ID,
      verifyingContract: '0x000000000022D473030F116dDEE9F6B43aC78BA3',
    },
    types: {
      PermitDetails: [
        { name: 'token', type: 'address' },
        { name: 'amount', type: 'uint160' },
        { name: 'expiration', type: 'uint48' },
        { name: 'nonce', type: 'uint48' },
      ],
      PermitSingle: [
        { name: 'details', type: 'PermitDetails' },
        { name: 'spender', type: 'address' },
        { name: 'sigDeadline', type: 'uint256' },
      ],
    },
    primaryType: 'PermitSingle',
    message: {
      details: {
        token: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48',
        amount: 1000000n,
        expiration: 1771790000,
        nonce: 0,
      },
      spender: '0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD',
      sigDeadline: 1771703600n,
    },
  },
  {
    name: 'erc2612-permit',
    domain: {
      name: 'USD Coin',
      version: '2',
      chainId: CHAIN_ID,
      verifyingContract: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48',
    },
    types: {
      Permit: [
        { name: 'owner', type: 'address' },
        { name: 'spender', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' },
      ],
    },
    primaryType: 'Permit',
    message: {
      owner: owner.address,
      spender: '0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD',
      value: 5000000n,
      nonce: 0n,
      deadline: 1771703600n,
    },
  },
]

const typed = []
for (const c of typedCases) {
  const { name, ...data } = c
  const hash = viem.hashTypedData(data)
  const digest = erc7739.hashTypedData({ ...data, verifierDomain })
  const ownerSignature = await owner.sign({ hash: digest })
  const signature = erc7739.wrapTypedDataSignature({ ...data, signature: ownerSignature })
  typed.push({ name, hash, digest, ownerSignature, signature })
}

const personal = []
for (const message of ['hello world', 'Sign in to example.org\nNonce: 42']) {
  const hash = viem.hashMessage(message)
  const digest = erc7739.hashMessage({ message, verifierDomain })
  const signature = await owner.sign({ hash: digest })
  personal.push({ message, hash, digest, signature })
}

process.stdout.write(
  `${JSON.stringify(
    { viem: version, chainId: CHAIN_ID, account: owner.address.toLowerCase(), typed, personal },
    null,
    2,
  )}\n`,
)
