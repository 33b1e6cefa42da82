package agent

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The cluster page: static HTML, JavaScript and CSS embedded in the binary
// (no build step, nothing fetched from elsewhere), served at / and /ui/.
// The files hold no secret, so they are served without the API token; the
// page sends the token, which the operator types once and the browser keeps
// for the tab's session, with every API call it makes.
//
//go:embed ui
var uiFiles embed.FS

// pageHandler serves the page's files.
func pageHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing on the page comes from elsewhere, and no other site may
		// frame it.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/ui")
		files.ServeHTTP(w, r2)
	})
}

// isPageRequest reports whether r asks for one of the page's files, which
// need no token.
func isPageRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/")
}
