package p2p

// validJSON reports whether data is exactly one JSON value, surrounded by
// optional white space: what encoding/json.Valid reports (the same grammar,
// the same nesting limit of 10,000, and like it no check of UTF-8 inside
// strings), in a few tight loops rather than a state machine called per
// byte. The Broadcaster checks every payload it delivers, at every node: in
// encoding/json that was 4 % of the process's CPU at 1,000 messages/s
// (BENCHMARKS.md), most of it spent crossing the strings. A differential
// fuzz test holds it to encoding/json.Valid.
func validJSON(data []byte) bool {
	v := jsonValidator{data: data}
	v.space()
	if !v.value(0) {
		return false
	}
	v.space()
	return v.i == len(data)
}

// maxJSONDepth is encoding/json's limit of nested arrays and objects.
const maxJSONDepth = 10000

type jsonValidator struct {
	data []byte
	i    int
}

func (v *jsonValidator) space() {
	for v.i < len(v.data) {
		switch v.data[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

// value checks the value at v.i, inside depth arrays and objects.
func (v *jsonValidator) value(depth int) bool {
	if v.i >= len(v.data) {
		return false
	}
	switch c := v.data[v.i]; {
	case c == '{':
		return depth < maxJSONDepth && v.object(depth+1)
	case c == '[':
		return depth < maxJSONDepth && v.array(depth+1)
	case c == '"':
		return v.str()
	case c == '-' || ('0' <= c && c <= '9'):
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *jsonValidator) object(depth int) bool {
	v.i++ // {
	v.space()
	if v.i < len(v.data) && v.data[v.i] == '}' {
		v.i++
		return true
	}
	for {
		if v.i >= len(v.data) || v.data[v.i] != '"' || !v.str() {
			return false
		}
		v.space()
		if v.i >= len(v.data) || v.data[v.i] != ':' {
			return false
		}
		v.i++
		v.space()
		if !v.value(depth) {
			return false
		}
		if done, ok := v.next('}'); done {
			return ok
		}
	}
}

// next moves past what follows an item of an object or array: a comma (more
// items follow: done false) or closer (done, ok); anything else is invalid
// (done, not ok).
func (v *jsonValidator) next(closer byte) (done, ok bool) {
	v.space()
	if v.i >= len(v.data) {
		return true, false
	}
	switch v.data[v.i] {
	case ',':
		v.i++
		v.space()
		return false, false
	case closer:
		v.i++
		return true, true
	}
	return true, false
}

func (v *jsonValidator) array(depth int) bool {
	v.i++ // [
	v.space()
	if v.i < len(v.data) && v.data[v.i] == ']' {
		v.i++
		return true
	}
	for {
		if !v.value(depth) {
			return false
		}
		if done, ok := v.next(']'); done {
			return ok
		}
	}
}

// str checks the string that starts at v.i (a quote).
func (v *jsonValidator) str() bool {
	v.i++ // "
	for {
		for v.i < len(v.data) {
			if c := v.data[v.i]; c < 0x20 || c == '"' || c == '\\' {
				break
			}
			v.i++
		}
		if v.i >= len(v.data) {
			return false
		}
		switch v.data[v.i] {
		case '"':
			v.i++
			return true
		case '\\':
			v.i++
			if v.i >= len(v.data) {
				return false
			}
			switch v.data[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				v.i++
			case 'u':
				v.i++
				for range 4 {
					if v.i >= len(v.data) || !isHex(v.data[v.i]) {
						return false
					}
					v.i++
				}
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// number checks the number that starts at v.i (a minus sign or a digit).
func (v *jsonValidator) number() bool {
	if v.data[v.i] == '-' {
		v.i++
	}
	if v.i >= len(v.data) {
		return false
	}
	switch c := v.data[v.i]; {
	case c == '0':
		v.i++
	case '1' <= c && c <= '9':
		v.digits()
	default:
		return false
	}
	if v.i < len(v.data) && v.data[v.i] == '.' {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if v.i < len(v.data) && (v.data[v.i] == 'e' || v.data[v.i] == 'E') {
		v.i++
		if v.i < len(v.data) && (v.data[v.i] == '+' || v.data[v.i] == '-') {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits, and reports whether there was one.
func (v *jsonValidator) digits() bool {
	start := v.i
	for v.i < len(v.data) && '0' <= v.data[v.i] && v.data[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}

func (v *jsonValidator) literal(word string) bool {
	if len(v.data)-v.i < len(word) || string(v.data[v.i:v.i+len(word)]) != word {
		return false
	}
	v.i += len(word)
	return true
}
