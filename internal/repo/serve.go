package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Handler serves the repository in dir read-only. Paths with a component
// starting with "." (the lock, the generations, temporary files) are not
// served: clients reach the live generation only through the public links.
// Every request is logged to log (nil = not logged).
func Handler(dir string, log io.Writer) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(rec, "read-only repository", http.StatusMethodNotAllowed)
		case hiddenPath(r.URL.Path):
			http.NotFound(rec, r)
		default:
			files.ServeHTTP(rec, r)
		}
		if log != nil {
			fmt.Fprintf(log, "%s %s %s %d %d\n", r.RemoteAddr, r.Method, r.URL.Path, rec.status, rec.bytes)
		}
	})
}

func hiddenPath(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if strings.HasPrefix(part, ".") {
			return true // also refuses ".." outright
		}
	}
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Serve serves dir over HTTP on addr until ctx ends, logging requests to log.
func Serve(ctx context.Context, dir, addr string, log io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve %s: %w", dir, err)
	}
	return ServeListener(ctx, dir, ln, log)
}

// ServeListener is Serve on a listener the caller opened (for example on
// port 0, to learn the address first).
func ServeListener(ctx context.Context, dir string, ln net.Listener, log io.Writer) error {
	if log != nil {
		fmt.Fprintf(log, "serving %s on http://%s/\n", dir, ln.Addr())
	}
	srv := &http.Server{Handler: Handler(dir, log), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
