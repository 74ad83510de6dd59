package tokenizer

import "unicode/utf8"

// Byte-level BPE (GPT-2) writes every byte of the text as one printable rune,
// so that a vocabulary of strings can cover arbitrary bytes. The printable
// bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68
// bytes (controls, space, DEL, NBSP, soft hyphen) are moved, in byte order, to
// U+0100 and up. So space becomes 'Ġ' (U+0120) and '\n' becomes 'Ċ' (U+010A).

// byteOrder lists the 256 bytes in the order GPT-2's bytes_to_unicode
// enumerates them: the self-mapped printable bytes first, then the moved ones.
// It is also the order of the mapped runes by code point, and the order in
// which byte-level vocabularies built from merges number their first 256 ids.
var byteOrder [256]byte

// byteRune[b] is the rune that stands for byte b.
var byteRune [256]rune

// byteRuneStr[b] is the UTF-8 encoding of byteRune[b].
var byteRuneStr [256]string

// runeByte[r] is the byte that rune r stands for, or -1; runes at or above
// len(runeByte) stand for no byte.
var runeByte [324]int16

func init() {
	n := 0
	self := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := 0; b < 256; b++ {
		if self(b) {
			byteOrder[n] = byte(b)
			byteRune[b] = rune(b)
			n++
		}
	}
	moved := 0
	for b := 0; b < 256; b++ {
		if !self(b) {
			byteOrder[n] = byte(b)
			byteRune[b] = rune(256 + moved)
			moved++
			n++
		}
	}
	for i := range runeByte {
		runeByte[i] = -1
	}
	for b := 0; b < 256; b++ {
		byteRuneStr[b] = string(byteRune[b])
		runeByte[byteRune[b]] = int16(b)
	}
}

// appendByteLevel appends the byte-level spelling of s (one rune per byte).
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteRuneStr[s[i]]...)
	}
	return dst
}

// unByteLevel returns the bytes a byte-level token stands for, appended to
// dst, and false if some rune of tok is outside the byte-level alphabet.
func unByteLevel(dst []byte, tok string) ([]byte, bool) {
	for _, r := range tok {
		if r < 0 || int(r) >= len(runeByte) || runeByte[r] < 0 {
			return dst, false
		}
		dst = append(dst, byte(runeByte[r]))
	}
	return dst, true
}

// appendLossy appends b to dst as UTF-8 text the way Rust's
// String::from_utf8_lossy does: each maximal invalid subpart (a byte that
// cannot start a sequence, or a valid but truncated prefix of one) becomes
// one U+FFFD. Go's strings.ToValidUTF8 (one U+FFFD per run) and range loops
// (one per byte) both differ from this.
func appendLossy(dst []byte, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		n, size := validPrefix(b[i:])
		if n == size {
			dst = append(dst, b[i:i+n]...)
		} else {
			dst = append(dst, "\uFFFD"...)
		}
		i += n
	}
	return dst
}

// validPrefix looks at the sequence that starts at b[0] (a non-ASCII byte).
// It returns the length n of the longest prefix of b that is a prefix of a
// valid UTF-8 sequence (at least 1) and the length size of the sequence b[0]
// starts (0 if b[0] cannot start one); the prefix is a whole character when
// n == size.
func validPrefix(b []byte) (n, size int) {
	c := b[0]
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		size = 2
	case c == 0xE0:
		size, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		size = 3
	case c == 0xED:
		size, hi = 3, 0x9F
	case c == 0xF0:
		size, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		size = 4
	case c == 0xF4:
		size, hi = 4, 0x8F
	default:
		return 1, 0
	}
	n = 1
	for n < size && n < len(b) {
		x := b[n]
		if n == 1 {
			if x < lo || x > hi {
				break
			}
		} else if x < 0x80 || x > 0xBF {
			break
		}
		n++
	}
	return n, size
}

// incompleteTail returns the length (0 to 3) of the valid but unfinished
// UTF-8 sequence at the end of b: bytes that more input could still complete.
func incompleteTail(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a lead byte (or an invalid one)
			n, size := validPrefix(b[len(b)-k:])
			if n == k && size > k {
				return k
			}
			return 0
		}
	}
	return 0
}
