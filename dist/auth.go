package dist

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TokenEnv is the environment variable that holds the shared token when no
// -token flag is given.
const TokenEnv = "LIGHTNING_TOKEN"

// Security is how the hub and the workers authenticate each other: a shared
// token on every RPC (always), and mutual TLS when the three files are set
// (each side presents CertFile/KeyFile, signed by the CA in CAFile, and
// accepts only peers signed by it).
type Security struct {
	Token                     string
	CertFile, KeyFile, CAFile string
}

// TLS reports whether mutual TLS is configured.
func (s Security) TLS() bool { return s.CertFile != "" || s.KeyFile != "" || s.CAFile != "" }

// Check validates s: a token is required, and TLS needs all three files.
func (s Security) Check() error {
	if s.Token == "" {
		return fmt.Errorf("dist: a shared token is required (-token or $%s); workers never serve without one", TokenEnv)
	}
	if s.TLS() && (s.CertFile == "" || s.KeyFile == "" || s.CAFile == "") {
		return errors.New("dist: mutual TLS needs all of -tls-cert, -tls-key and -tls-ca")
	}
	return nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("dist: TLS key pair: %w", err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("dist: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("dist: TLS CA: no PEM certificate in %s", s.CAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// serverOptions returns the gRPC options of a worker: transport
// credentials and the token check on every unary and streaming RPC.
func (s Security) serverOptions() ([]grpc.ServerOption, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	if s.TLS() {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	want := []byte("Bearer " + s.Token)
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			if subtle.ConstantTimeCompare([]byte(v), want) == 1 {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "dist: missing or wrong token")
	}
	opts = append(opts,
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	return opts, nil
}

// tokenCreds sends the token on every RPC.
type tokenCreds struct {
	token  string
	secure bool
}

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

func (t tokenCreds) RequireTransportSecurity() bool { return t.secure }

// dialOptions returns the gRPC options of a client (the hub, or a leader
// calling its expert peers).
func (s Security) dialOptions() ([]grpc.DialOption, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if s.TLS() {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(tokenCreds{token: s.Token, secure: s.TLS()}),
		// Reconnect to a restarted worker within about a second.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName), grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)),
	}, nil
}

// CheckListen refuses a plaintext listener on an address other than
// loopback unless insecureOK: without TLS the token crosses the network in
// clear text.
func (s Security) CheckListen(addr string, insecureOK bool) error {
	if s.TLS() || insecureOK {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dist: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("dist: refusing to listen on %s without TLS (the token would cross the network in clear); give -tls-cert/-tls-key/-tls-ca, a loopback address, or -insecure-listen", addr)
}
