package kv

import (
	"encoding/json"
	"fmt"
)

// PutJSON returns a [Put] input setting key to the JSON encoding of v.
func PutJSON(reqID uint64, key string, v any) (Put, error) {
	value, err := json.Marshal(v)
	if err != nil {
		return Put{}, fmt.Errorf("kv: encode key %s as JSON: %w", quoteKey(key), err)
	}
	return Put{ReqID: reqID, Key: key, Value: value}, nil
}

// GetJSON decodes the JSON value of key in s into v. It reports whether the
// key was found.
func GetJSON(s *Store, key string, v any) (bool, error) {
	rec, ok := s.Get(key)
	if !ok {
		return false, nil
	}
	return true, rec.DecodeJSON(v)
}

// DecodeJSON decodes the record's value, which must be JSON, into v.
func (r Record) DecodeJSON(v any) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("kv: decode key %s as JSON: %w", quoteKey(r.Key), err)
	}
	return nil
}
