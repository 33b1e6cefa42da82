package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/p2p-go/p2p"
	"github.com/p2p-go/p2p/kv"
	"github.com/p2p-go/p2p/peer"
)

// CodeNotAdmin is the error code (403) of a revocation asked of an agent
// that is not one of the cluster's admins.
const CodeNotAdmin = "not_admin"

// Revocation is one entry of the deny list in GET /v1/revocations.
type Revocation struct {
	// ID is the revoked node; By the node that revoked it.
	ID string `json:"id"`
	By string `json:"by"`
	// At is when (the revoker's clock, RFC 3339): the revoked node's
	// store writes dated after it are refused everywhere.
	At string `json:"at"`
}

// RevocationsResponse is the body of GET /v1/revocations.
type RevocationsResponse struct {
	Revocations []Revocation `json:"revocations"`
}

// RevokeRequest is the body of POST /v1/revocations.
type RevokeRequest struct {
	ID string `json:"id"`
}

func toRevocation(r p2p.Revocation) Revocation {
	return Revocation{ID: r.ID.String(), By: r.By.String(), At: r.At.Time().Format(time.RFC3339Nano)}
}

// classifyRevocation maps the errors of a revocation to API errors.
func classifyRevocation(err error) error {
	switch {
	case errors.Is(err, kv.ErrNotAdmin):
		return errorf(http.StatusForbidden, CodeNotAdmin, "%v", err)
	case errors.Is(err, kv.ErrBadRevocation):
		return errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	return err
}

func (a *Agent) handleRevocations(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	list, err := a.node.Revoked(ctx)
	if err != nil {
		return err
	}
	out := RevocationsResponse{Revocations: make([]Revocation, 0, len(list))}
	for _, rev := range list {
		out.Revocations = append(out.Revocations, toRevocation(rev))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *Agent) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		return err
	}
	var req RevokeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, `body is not {"id": "<node ID>"}: %v`, err)
	}
	id, err := peer.ParseID(req.ID)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	if err := a.node.Revoke(ctx, id); err != nil {
		return classifyRevocation(err)
	}
	list, err := a.node.Revoked(ctx)
	if err != nil {
		return err
	}
	for _, rev := range list {
		if rev.ID == id {
			a.logger.Warn("member revoked", "peer", id.Short(), "by", rev.By.Short())
			writeJSON(w, http.StatusOK, toRevocation(rev))
			return nil
		}
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "revocation of %s not found after it was written", id.Short())
}

// Revoke calls POST /v1/revocations: the node id (its full printable form)
// is added to the cluster's deny list.
func (c *Client) Revoke(ctx context.Context, id string) (Revocation, error) {
	body, _ := json.Marshal(RevokeRequest{ID: strings.TrimSpace(id)})
	var out Revocation
	err := c.getJSON(ctx, http.MethodPost, "/v1/revocations", body, &out)
	return out, err
}

// Revocations calls GET /v1/revocations.
func (c *Client) Revocations(ctx context.Context) ([]Revocation, error) {
	var out RevocationsResponse
	err := c.getJSON(ctx, http.MethodGet, "/v1/revocations", nil, &out)
	return out.Revocations, err
}
