package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// encoding/json matches field names without regard to case and lets a
// repeated key win silently, so {"Stream":…} or {"id":"0","id":"apiRule"}
// would be read as something other than what a careful reader of the body
// sees. checkStrict refuses both, before the body is decoded.

// maxDepth bounds how deep a rule body may nest; a rule is two levels deep.
const maxDepth = 16

// checkStrict walks the JSON value in data: every object's keys must be
// distinct, and the top-level object's keys must each be exactly one of
// names (as written in the json tags: case matters).
func checkStrict(data []byte, names map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkJSON(dec, names, 0)
}

func walkJSON(dec *json.Decoder, names map[string]bool, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("field %q appears twice", key)
			}
			seen[key] = true
			if names != nil && !names[key] {
				return unknownField(key, names)
			}
			if err := walkJSON(dec, nil, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if err := walkJSON(dec, nil, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

// unknownField names the field, and the right spelling if only its case is
// wrong.
func unknownField(key string, names map[string]bool) error {
	for n := range names {
		if strings.EqualFold(n, key) {
			return fmt.Errorf("unknown field %q (field names are case-sensitive: %q)", key, n)
		}
	}
	return fmt.Errorf("unknown field %q", key)
}

// jsonNames returns the field names of the struct T as its json tags
// spell them.
func jsonNames[T any]() map[string]bool {
	t := reflect.TypeFor[T]()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "":
			names[f.Name] = true
		default:
			names[name] = true
		}
	}
	return names
}

// unmarshalStrict decodes data into a T after checkStrict: field names
// exactly as tagged, no key twice, no unknown field, one value only.
func unmarshalStrict[T any](data []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	if dec.More() {
		return v, errors.New("more than one value in body")
	}
	if err := checkStrict(data, jsonNames[T]()); err != nil {
		return v, err
	}
	return v, nil
}
