// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

// A third-party ERC-7579 account for SessionWard's tests: OpenZeppelin's AccountERC7579 (npm
// @openzeppelin/contracts, not written by SessionWard) with one ECDSA owner (OpenZeppelin's
// SignerECDSA) and the canonical EntryPoint v0.7 instead of the library's default v0.9.
//
// - A user operation whose nonce key does not name an installed validator is the owner's: its
//   signature is the owner's ECDSA signature of the raw userOpHash (SignerECDSA).
// - A user operation whose nonce key is `validator (20 bytes) || key (4 bytes)` is validated by
//   that installed validator (AccountERC7579's selection), its signature passed unchanged.
// - ERC-1271: an installed validator named by the signature's first 20 bytes first (the
//   library's rule), else the owner's ECDSA signature of the hash itself.

import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {SignerECDSA} from "@openzeppelin/contracts/utils/cryptography/signers/SignerECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

contract OwnedAccountERC7579 is AccountERC7579, SignerECDSA {
    IEntryPoint private immutable ENTRY_POINT;

    constructor(address owner, IEntryPoint entryPoint_) SignerECDSA(owner) {
        ENTRY_POINT = entryPoint_;
    }

    function entryPoint() public view override returns (IEntryPoint) {
        return ENTRY_POINT;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) public view override returns (bytes4) {
        bytes4 answer = super.isValidSignature(hash, signature);
        if (answer == IERC1271.isValidSignature.selector) return answer;
        return _rawSignatureValidation(hash, signature) ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    function _rawSignatureValidation(
        bytes32 hash,
        bytes calldata signature
    ) internal view override(AccountERC7579, SignerECDSA) returns (bool) {
        return SignerECDSA._rawSignatureValidation(hash, signature);
    }
}
