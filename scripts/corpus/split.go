package main

import "hash/fnv"

// heldOutPerMyriad is the held-out share of documents, in units of 1/10000
// (2%).
const heldOutPerMyriad = 200

// splitHash is the 64-bit FNV-1a hash of source, a zero byte and id. It is
// the split key: it depends only on the document's source and its stable id,
// never on its position in the output or on other documents.
func splitHash(source, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return h.Sum64()
}

// heldOut reports whether the document (source, id) belongs to the held-out
// split: splitHash mod 10000 below heldOutPerMyriad.
func heldOut(source, id string) bool {
	return splitHash(source, id)%10000 < heldOutPerMyriad
}
