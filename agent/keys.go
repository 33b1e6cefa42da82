package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/p2p-go/p2p"
)

// KeyRequest is the body of POST /v1/keys/install, /v1/keys/use and
// /v1/keys/remove.
type KeyRequest struct {
	// Key is a cluster secret as `p2p keygen` prints it.
	Key string `json:"key"`
}

// KeyMember is a member in a KeysResponse.
type KeyMember struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Name string `json:"name,omitempty"`
	// Error is why the member refused the operation (Failed only).
	Error string `json:"error,omitempty"`
}

// KeysResponse is the body of GET /v1/keys and of the keyring operations:
// which members applied the operation, which refused it and which did not
// answer in time, and the keys the answers reported.
type KeysResponse struct {
	// Members is the number of members asked, this agent included.
	Members  int         `json:"members"`
	Applied  []KeyMember `json:"applied"`
	Failed   []KeyMember `json:"failed"`
	NoAnswer []KeyMember `json:"no_answer"`
	// Keys counts the members holding each key; Primary those using it for
	// their outgoing handshakes.
	Keys    map[string]int `json:"keys"`
	Primary map[string]int `json:"primary"`
}

// Complete reports whether every member asked applied the operation.
func (r KeysResponse) Complete() bool {
	return len(r.Failed) == 0 && len(r.NoAnswer) == 0 && len(r.Applied) >= r.Members
}

func (a *Agent) handleKeysList(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	resp, err := a.node.ListKeys(ctx)
	if err != nil {
		return keyError(err)
	}
	writeJSON(w, http.StatusOK, a.keysResponse(r.Context(), resp))
	return nil
}

func (a *Agent) handleKeyOp(op func(*p2p.Broadcaster, context.Context, []byte) (p2p.KeyringResponse, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.requireJSON(r); err != nil {
			return err
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
		if err != nil {
			return err
		}
		var req KeyRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "body is not {\"key\": \"...\"}: %v", err)
		}
		key, err := p2p.ParseSecret(req.Key)
		if err != nil || key == nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "key: want a cluster secret as `p2p keygen` prints it (%v)", err)
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		resp, err := op(a.node, ctx, key)
		if err != nil {
			return keyError(err)
		}
		writeJSON(w, http.StatusOK, a.keysResponse(r.Context(), resp))
		return nil
	}
}

func keyError(err error) error {
	if errors.Is(err, p2p.ErrNoKeyring) {
		return errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return err
}

// keysResponse adds the members' published names to a keyring response.
func (a *Agent) keysResponse(ctx context.Context, r p2p.KeyringResponse) KeysResponse {
	names := map[string]string{}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if published, err := a.node.Store().List(ctx, NodesPrefix); err == nil {
		for _, rec := range published {
			var ni NodeInfo
			if json.Unmarshal(rec.Value, &ni) == nil && NodesPrefix+ni.ID == rec.Key {
				names[ni.ID] = ni.Name
			}
		}
	}
	member := func(m p2p.Member, errText string) KeyMember {
		id := m.ID.String()
		return KeyMember{ID: id, Addr: m.Addr, Name: names[id], Error: errText}
	}
	out := KeysResponse{Members: r.Members, Applied: []KeyMember{}, Failed: []KeyMember{}, NoAnswer: []KeyMember{}, Keys: r.Keys, Primary: r.Primary}
	for _, m := range r.Applied {
		out.Applied = append(out.Applied, member(m, ""))
	}
	for _, f := range r.Failed {
		out.Failed = append(out.Failed, member(f.Member, f.Error))
	}
	for _, m := range r.NoAnswer {
		out.NoAnswer = append(out.NoAnswer, member(m, ""))
	}
	return out
}
