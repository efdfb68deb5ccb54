// The WalletConnect client the approval page loads where WalletConnect is configured
// (sessionward/ui/walletconnect.py): WalletConnect's EthereumProvider, an EIP-1193 provider, as
// an ES module. Bundled for the browser by `npm run build:walletconnect` (build/walletconnect.js).
export { EthereumProvider } from "@walletconnect/ethereum-provider";
