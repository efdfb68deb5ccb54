"""How SessionWard talks to an EVM chain.

- :mod:`~sessionward.chain.interface`: the :class:`Chain` protocol, its value types, and the
  :class:`DevChain` test helpers;
- :mod:`~sessionward.chain.embedded`: the in-process chain (titanoboa / py-evm), the default;
- :mod:`~sessionward.chain.rpc` over :mod:`~sessionward.chain.jsonrpc`: any JSON-RPC node;
- :mod:`~sessionward.chain.ethereum_transactions`: type-2 and type-4 (EIP-7702) transactions, encoded
  with the ``rlp`` package and signed with libsecp256k1;
- :mod:`~sessionward.chain.relayer`, :mod:`~sessionward.chain.relay_jobs`,
  :mod:`~sessionward.chain.signer`: exactly-once submission from the service's hot key;
- :mod:`~sessionward.chain.contracts`: compiled contract bindings;
  :mod:`~sessionward.chain.artifacts`: SessionWard's own contracts (SessionAccount and its
  factory) compiled and deployed; :mod:`~sessionward.chain.demo`: the demo tokens and router;
- :mod:`~sessionward.chain.erc1271`: ERC-1271 owner signatures checked on chain;
- :mod:`~sessionward.chain.errors`: typed failures.

Nothing is imported here, so ``import sessionward.chain.rpc`` does not load titanoboa.
"""
