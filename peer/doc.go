// Package peer defines who a node is: its ed25519 key pair, the node ID derived
// from the public key, and the (ID, address) pair that overlays exchange.
//
// A node ID is the SHA-256 hash of the node's ed25519 public key: 256 bits, so
// that the Kademlia overlay can use it directly as a position in its key space.
// Its printable form is lowercase base32 without padding (52 characters), and
// [ID.Short] gives the first 10 characters for logs and tables.
package peer
