package dist

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightninglm/lightning/internal/testpki"
	"github.com/lightninglm/lightning/model"
)

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
	ca := testpki.NewCA(t, "lightning-ca")
	wc, wk := ca.Issue(t, "worker")
	hc, hk := ca.Issue(t, "hub")
	workerSec := Security{Token: testToken, CertFile: wc, KeyFile: wk, CAFile: ca.File}
	plan, _ := ParsePlan("pp=2")
	addrs := startWorkers(t, plan, workerSec)

	// The right certificate and token: the hub works.
	hub, err := Dial(loadEnds(t), plan, addrs, Security{Token: testToken, CertFile: hc, KeyFile: hk, CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, hub.Info().VocabSize)
	hub.Forward([]model.Seq{{State: hub.NewState(), Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}}, logits)
	hub.Close()

	// A client certificate from another CA, a plaintext client and the
	// right certificate with a wrong token are all refused.
	other := testpki.NewCA(t, "other-ca")
	oc, ok := other.Issue(t, "intruder")
	for name, sec := range map[string]Security{
		"foreign certificate": {Token: testToken, CertFile: oc, KeyFile: ok, CAFile: ca.File},
		"wrong token":         {Token: "wrong", CertFile: hc, KeyFile: hk, CAFile: ca.File},
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
