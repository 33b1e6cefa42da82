package kv

import (
	"crypto/sha256"
	"encoding/binary"
)

// Shape of the Merkle tree every replica keeps over its records. Every node
// of a cluster must use the same shape; changing it means new message types.
const (
	// treeFanout is the number of children of an inner node.
	treeFanout = 16
	// treeDepth is the level of the leaves; the root is level 0.
	treeDepth = 4
	// leafCount is the number of leaves (key-hash buckets): 16^4 = 65,536.
	leafCount = 1 << 16
	// wireHashLen is how many bytes of a node's hash travel in SyncNodes.
	// A false match needs a 64-bit collision between two differing nodes.
	wireHashLen = 8
)

// keyHash returns the first 64 bits of a key's SHA-256: its name in
// summaries. Its first 16 bits are the key's leaf.
func keyHash(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])
}

// leafOf returns the bucket of a key: the first 16 bits of its SHA-256.
func leafOf(key string) uint32 { return leafOfHash(keyHash(key)) }

// leafOfHash returns the leaf of a key hash.
func leafOfHash(h uint64) uint32 { return uint32(h >> 48) }

// levelSize returns the number of nodes at a level.
func levelSize(level int) uint32 { return 1 << (4 * level) }

// merkleTree is a fixed-shape hash tree over key-hash buckets. A leaf's hash
// is the XOR of the hashes of the records in its bucket, so a write updates
// it in O(1) whatever its size; an inner node's hash is the SHA-256 of its
// children's hashes, recomputed lazily for the nodes a write made dirty. The
// hash of an empty subtree is all zeros, so two empty stores agree and the
// maps below hold only non-empty nodes: an empty tree costs nothing, one of
// 100,000 keys about 4 MB.
type merkleTree struct {
	// levels[l] maps a node index at level l to its hash; absent means
	// the empty (zero) hash.
	levels [treeDepth + 1]map[uint32][32]byte
	// dirty[l] holds the inner nodes at level l whose hash is stale.
	dirty [treeDepth]map[uint32]struct{}
	// records[l] counts the records under each inner node at level l
	// (absent means none); the store keeps the keys of each leaf.
	records [treeDepth]map[uint32]int
}

func newMerkleTree() *merkleTree {
	t := &merkleTree{}
	for l := range t.levels {
		t.levels[l] = make(map[uint32][32]byte)
	}
	for l := range t.dirty {
		t.dirty[l] = make(map[uint32]struct{})
		t.records[l] = make(map[uint32]int)
	}
	return t
}

// toggle adds a record hash to its leaf, or removes it if it was there (XOR).
func (t *merkleTree) toggle(leaf uint32, recordHash [32]byte) {
	sum := t.levels[treeDepth][leaf]
	for i := range sum {
		sum[i] ^= recordHash[i]
	}
	if sum == ([32]byte{}) {
		delete(t.levels[treeDepth], leaf)
	} else {
		t.levels[treeDepth][leaf] = sum
	}
	index := leaf
	for l := treeDepth - 1; l >= 0; l-- {
		index /= treeFanout
		t.dirty[l][index] = struct{}{}
	}
}

// count adds delta to the record counts of the ancestors of a leaf.
func (t *merkleTree) count(leaf uint32, delta int) {
	index := leaf
	for l := treeDepth - 1; l >= 0; l-- {
		index /= treeFanout
		if n := t.records[l][index] + delta; n == 0 {
			delete(t.records[l], index)
		} else {
			t.records[l][index] = n
		}
	}
}

// refresh recomputes the stale inner nodes, deepest level first.
func (t *merkleTree) refresh() {
	var children [treeFanout * 32]byte
	for l := treeDepth - 1; l >= 0; l-- {
		for index := range t.dirty[l] {
			empty := true
			for c := range uint32(treeFanout) {
				child := t.levels[l+1][index*treeFanout+c]
				copy(children[c*32:], child[:])
				if child != ([32]byte{}) {
					empty = false
				}
			}
			if empty {
				delete(t.levels[l], index)
			} else {
				t.levels[l][index] = sha256.Sum256(children[:])
			}
		}
		clear(t.dirty[l])
	}
}

// node returns the hash of a node; call refresh first.
func (t *merkleTree) node(level int, index uint32) [32]byte {
	return t.levels[level][index]
}

// root returns the root hash, refreshing the tree.
func (t *merkleTree) root() [32]byte {
	t.refresh()
	return t.levels[0][0]
}

// appendChildren appends the wire form (wireHashLen bytes each) of the
// treeFanout children of parent, which sits at level-1, to dst.
func (t *merkleTree) appendChildren(dst []byte, level int, parent uint32) []byte {
	for c := range uint32(treeFanout) {
		sum := t.levels[level][parent*treeFanout+c]
		dst = append(dst, sum[:wireHashLen]...)
	}
	return dst
}
