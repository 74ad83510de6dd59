package dist

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightninglm/lightning/model"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate for 127.0.0.1, usable as server and client,
// and its key; it returns their paths.
func (ca *testCA) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func TestTokenRequired(t *testing.T) {
	if err := (Security{}).Check(); err == nil {
		t.Error("empty token accepted")
	}
	if err := (Security{Token: "x", CertFile: "a"}).Check(); err == nil {
		t.Error("TLS with only a certificate accepted")
	}
	sec := Security{Token: "x"}
	if err := sec.CheckListen("0.0.0.0:7000", false); err == nil {
		t.Error("plaintext listener on all interfaces accepted")
	}
	for _, addr := range []string{"127.0.0.1:7000", "[::1]:7000", "localhost:7000"} {
		if err := sec.CheckListen(addr, false); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestWrongTokenRefused(t *testing.T) {
	plan, _ := ParsePlan("pp=2")
	addrs := startWorkers(t, plan, Security{Token: testToken})
	_, err := Dial(loadEnds(t), plan, addrs, Security{Token: "wrong-token"})
	if err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("Dial with a wrong token: %v, want Unauthenticated", err)
	}
	// The streams check the token too (Dial stops at the unary Info).
	opts, _ := Security{Token: "wrong-token"}.dialOptions()
	conn, err := grpc.NewClient(addrs[0], opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, sd := range []*grpc.StreamDesc{&stepsStream, &expertsStream} {
		st, err := conn.NewStream(context.Background(), sd, "/"+serviceName+"/"+sd.StreamName)
		if err == nil {
			st.SendMsg(&stepRequest{})
			err = st.RecvMsg(&stepReply{})
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s stream with a wrong token: %v, want Unauthenticated", sd.StreamName, err)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "lightning-ca")
	wc, wk := ca.issue(t, "worker")
	hc, hk := ca.issue(t, "hub")
	workerSec := Security{Token: testToken, CertFile: wc, KeyFile: wk, CAFile: ca.file}
	plan, _ := ParsePlan("pp=2")
	addrs := startWorkers(t, plan, workerSec)

	// The right certificate and token: the hub works.
	hub, err := Dial(loadEnds(t), plan, addrs, Security{Token: testToken, CertFile: hc, KeyFile: hk, CAFile: ca.file})
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, hub.Info().VocabSize)
	hub.Forward([]model.Seq{{State: hub.NewState(), Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}}, logits)
	hub.Close()

	// A client certificate from another CA, a plaintext client and the
	// right certificate with a wrong token are all refused.
	other := newCA(t, "other-ca")
	oc, ok := other.issue(t, "intruder")
	for name, sec := range map[string]Security{
		"foreign certificate": {Token: testToken, CertFile: oc, KeyFile: ok, CAFile: ca.file},
		"wrong token":         {Token: "wrong", CertFile: hc, KeyFile: hk, CAFile: ca.file},
		"plaintext":           {Token: testToken},
	} {
		if h, err := Dial(loadEnds(t), plan, addrs, sec); err == nil {
			h.Close()
			t.Errorf("%s: Dial succeeded", name)
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}
}
