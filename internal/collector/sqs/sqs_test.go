package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	smithy "github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/custompodautoscaler/cpa/internal/collector"
)

var now = time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)

const (
	region    = "eu-central-1"
	accessKey = "AKIDTESTSQS"
	account   = "123456789012"
)

// apiError is an error answer of the AWS JSON 1.0 protocol.
type apiError struct {
	status int
	typ    string // the __type, e.g. "com.amazonaws.sqs#QueueDoesNotExist"
	msg    string
	query  string // the X-Amzn-Query-Error header real SQS adds, if any
}

var errNoQueue = apiError{
	status: http.StatusBadRequest,
	typ:    "com.amazonaws.sqs#QueueDoesNotExist",
	msg:    "The specified queue does not exist.",
	query:  "AWS.SimpleQueueService.NonExistentQueue;Sender",
}

// fakeSQS answers GetQueueUrl and GetQueueAttributes as SQS does over the AWS JSON 1.0
// protocol (the requests and answers of the SDK's request and response snapshots).
type fakeSQS struct {
	t *testing.T

	mu     sync.Mutex
	urls   map[string]string            // queue name → URL
	attrs  map[string]map[string]string // URL → attributes
	fail   map[string]apiError          // operation → its error answer
	hang   bool                         // answer nothing until the request is cancelled
	calls  []string                     // "Operation name-or-URL", in order
	region string                       // the region requests must be signed for
}

func newFake(t *testing.T) (*fakeSQS, *httptest.Server) {
	f := &fakeSQS{t: t, urls: map[string]string{}, attrs: map[string]map[string]string{}, fail: map[string]apiError{}, region: region}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// queue creates (or replaces) the queue name at url, holding n messages.
func (f *fakeSQS) queue(name, url, n string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.urls[name]; ok {
		delete(f.attrs, old)
	}
	f.urls[name] = url
	f.attrs[url] = map[string]string{"ApproximateNumberOfMessages": n, "ApproximateNumberOfMessagesNotVisible": "7"}
}

func (f *fakeSQS) setAttrs(url string, attrs map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attrs[url] = attrs
}

func (f *fakeSQS) failWith(op string, e apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = e
}

func (f *fakeSQS) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeSQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("%s %s, want POST /", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		t.Errorf("Content-Type %q, want application/x-amz-json-1.0", ct)
	}
	wantCred := fmt.Sprintf("Credential=%s/", accessKey)
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, wantCred) || !strings.Contains(a, "/"+f.region+"/sqs/aws4_request") {
		t.Errorf("Authorization %q: want a SigV4 signature with %s for %s/sqs", a, accessKey, f.region)
	}
	var in struct {
		QueueName      *string
		QueueUrl       *string
		AttributeNames []string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		t.Errorf("request body: %v", err)
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !ok {
		t.Errorf("X-Amz-Target %q, want AmazonSQS.<operation>", r.Header.Get("X-Amz-Target"))
	}

	f.mu.Lock()
	arg := ""
	switch op {
	case "GetQueueUrl":
		arg = aws.ToString(in.QueueName)
	case "GetQueueAttributes":
		arg = aws.ToString(in.QueueUrl)
	}
	f.calls = append(f.calls, op+" "+arg)
	hang := f.hang
	failure, failing := f.fail[op]
	url, known := f.urls[arg]
	attrs, exists := f.attrs[arg]
	f.mu.Unlock()

	if hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-RequestId", "c0ffee00-0000-4000-8000-000000000000")
	answerErr := func(e apiError) {
		if e.query != "" {
			w.Header().Set("X-Amzn-Query-Error", e.query)
		}
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
	}
	answer := func(v any) {
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case failing:
		answerErr(failure)
	case op == "GetQueueUrl" && (in.QueueName == nil || in.AttributeNames != nil):
		t.Errorf("GetQueueUrl body %+v: want a QueueName alone", in)
		answerErr(apiError{status: 400, typ: "com.amazonaws.sqs#InvalidAddress", msg: "bad request"})
	case op == "GetQueueUrl" && !known:
		answerErr(errNoQueue)
	case op == "GetQueueUrl":
		answer(map[string]string{"QueueUrl": url})
	case op == "GetQueueAttributes" && !cmp.Equal(in.AttributeNames, []string{"ApproximateNumberOfMessages"}):
		t.Errorf("GetQueueAttributes AttributeNames %q, want [ApproximateNumberOfMessages]", in.AttributeNames)
		answerErr(apiError{status: 400, typ: "com.amazonaws.sqs#InvalidAttributeName", msg: "bad request"})
	case op == "GetQueueAttributes" && !exists:
		answerErr(errNoQueue)
	case op == "GetQueueAttributes":
		out := map[string]string{}
		for _, name := range in.AttributeNames {
			if v, ok := attrs[name]; ok {
				out[name] = v
			}
		}
		answer(map[string]any{"Attributes": out})
	default:
		t.Errorf("unexpected operation %q", op)
		answerErr(apiError{status: 400, typ: "com.amazonaws.sqs#UnsupportedOperation", msg: op})
	}
}

// isolate keeps the developer's AWS files and profile out of LoadDefaultConfig.
func isolate(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_PROFILE", "")
}

func staticCreds() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: "test-secret", Source: "test"}, nil
	})
}

func opts(srv *httptest.Server) Options {
	return Options{
		Regions:          []string{"us-east-1", region},
		Credentials:      staticCreds(),
		BaseEndpoint:     srv.URL,
		RetryMaxAttempts: 1,
		RequestTimeout:   5 * time.Second,
		Clock:            clocktesting.NewFakePassiveClock(now),
	}
}

func cfg(keys map[string]string) collector.Config {
	return collector.Config{
		Kind: collector.External, Name: "my-sqs", Type: Type, Namespace: "app",
		Keys:   keys,
		Labels: map[string]string{"type": Type, "queue-name": "orders", "region": region},
	}
}

func keys(queue string) map[string]string {
	return map[string]string{"type": Type, "queue-name": queue, "region": region}
}

func build(t *testing.T, srv *httptest.Server, queue string) collector.Collector {
	t.Helper()
	isolate(t)
	c, err := New(cfg(keys(queue)), opts(srv))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func queueURL(name string) string {
	return "https://sqs." + region + ".amazonaws.com/" + account + "/" + name
}

func wantValue(t *testing.T, c collector.Collector, want int64) {
	t.Helper()
	got, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	w := []collector.Value{{
		Labels:    map[string]string{"type": Type, "queue-name": "orders", "region": region},
		Value:     *resource.NewQuantity(want, resource.DecimalSI),
		Timestamp: now,
	}}
	if diff := cmp.Diff(w, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("Collect (-want +got):\n%s", diff)
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestCollect(t *testing.T) {
	for _, tc := range []struct {
		n    string
		want int64
	}{{"12", 12}, {"0", 0}, {"120000", 120000}, {"9223372036854775807", 1<<63 - 1}} {
		t.Run(tc.n, func(t *testing.T) {
			f, srv := newFake(t)
			f.queue("orders", queueURL("orders"), tc.n)
			c := build(t, srv, "orders")
			wantValue(t, c, tc.want)
			if diff := cmp.Diff([]string{"GetQueueUrl orders", "GetQueueAttributes " + queueURL("orders")}, f.takeCalls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCollectFIFOQueue(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders.fifo", queueURL("orders.fifo"), "3")
	wantValue(t, build(t, srv, "orders.fifo"), 3)
}

func TestValuesDoNotShareLabels(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders", queueURL("orders"), "1")
	c := build(t, srv, "orders")
	got, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got[0].Labels["type"] = "changed"
	wantValue(t, c, 1)
}

func TestQueueURLIsCached(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders", queueURL("orders"), "4")
	c := build(t, srv, "orders")
	wantValue(t, c, 4)
	f.queue("orders", queueURL("orders"), "5")
	wantValue(t, c, 5)
	wantValue(t, c, 5)
	want := []string{
		"GetQueueUrl orders",
		"GetQueueAttributes " + queueURL("orders"),
		"GetQueueAttributes " + queueURL("orders"),
		"GetQueueAttributes " + queueURL("orders"),
	}
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestQueueURLIsRefreshed(t *testing.T) {
	f, srv := newFake(t)
	old, recreated := queueURL("orders"), "http://sqs.local/"+account+"/orders"
	f.queue("orders", old, "4")
	c := build(t, srv, "orders")
	wantValue(t, c, 4)
	f.takeCalls()

	// The queue is created again under another URL: one collection follows it.
	f.queue("orders", recreated, "9")
	wantValue(t, c, 9)
	want := []string{"GetQueueAttributes " + old, "GetQueueUrl orders", "GetQueueAttributes " + recreated}
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("calls after the queue moved (-want +got):\n%s", diff)
	}
	wantValue(t, c, 9)
	if diff := cmp.Diff([]string{"GetQueueAttributes " + recreated}, f.takeCalls()); diff != "" {
		t.Errorf("calls after the refresh (-want +got):\n%s", diff)
	}

	// The queue is deleted: an error naming the queue and the region, no 0, and the
	// next collection asks for the URL again.
	f.mu.Lock()
	delete(f.urls, "orders")
	delete(f.attrs, recreated)
	f.mu.Unlock()
	_, err := c.Collect(context.Background())
	wantErr(t, err, `SQS queue "orders" in eu-central-1`, "GetQueueUrl", "NonExistentQueue", "does not exist")
	if !IsQueueDoesNotExist(err) {
		t.Errorf("IsQueueDoesNotExist(%v) = false", err)
	}
	want = []string{"GetQueueAttributes " + recreated, "GetQueueUrl orders"}
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("calls after the deletion (-want +got):\n%s", diff)
	}
	_, err = c.Collect(context.Background())
	wantErr(t, err, `SQS queue "orders" in eu-central-1`, "GetQueueUrl")
	if diff := cmp.Diff([]string{"GetQueueUrl orders"}, f.takeCalls()); diff != "" {
		t.Errorf("calls while the queue is missing (-want +got):\n%s", diff)
	}

	// It comes back.
	f.queue("orders", old, "2")
	wantValue(t, c, 2)
}

func TestFreshURLIsNotRetried(t *testing.T) {
	// GetQueueUrl answers a URL that GetQueueAttributes says names no queue: the
	// collection fails without looping, and the URL is not kept.
	f, srv := newFake(t)
	f.mu.Lock()
	f.urls["orders"] = queueURL("orders")
	f.mu.Unlock()
	c := build(t, srv, "orders")
	for range 2 {
		_, err := c.Collect(context.Background())
		wantErr(t, err, `SQS queue "orders" in eu-central-1`, "GetQueueAttributes "+queueURL("orders"), "does not exist")
		want := []string{"GetQueueUrl orders", "GetQueueAttributes " + queueURL("orders")}
		if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	}
}

func TestQueueDoesNotExist(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    apiError
	}{
		{"with the query error header", errNoQueue},
		{"JSON only", apiError{status: 400, typ: "com.amazonaws.sqs#QueueDoesNotExist", msg: "The specified queue does not exist."}},
		{"short type", apiError{status: 400, typ: "QueueDoesNotExist", msg: "The specified queue does not exist."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.failWith("GetQueueUrl", tc.e)
			c := build(t, srv, "orders")
			got, err := c.Collect(context.Background())
			wantErr(t, err, `SQS queue "orders" in eu-central-1: GetQueueUrl`, "The specified queue does not exist.")
			if got != nil {
				t.Errorf("values %v with the error", got)
			}
			if !IsQueueDoesNotExist(err) {
				t.Errorf("IsQueueDoesNotExist(%v) = false", err)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name, op string
		e        apiError
		code     string
	}{
		{"access denied", "GetQueueUrl", apiError{status: 400, typ: "com.amazon.coral.service#AccessDeniedException", msg: "User is not authorized to perform: sqs:getqueueurl", query: "AccessDenied;Sender"}, "AccessDenied"},
		{"throttled", "GetQueueAttributes", apiError{status: 400, typ: "com.amazonaws.sqs#RequestThrottled", msg: "Rate exceeded"}, "RequestThrottled"},
		{"internal error", "GetQueueAttributes", apiError{status: 500, typ: "InternalFailure", msg: "We encountered an internal error."}, "InternalFailure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.queue("orders", queueURL("orders"), "12")
			f.failWith(tc.op, tc.e)
			c := build(t, srv, "orders")
			got, err := c.Collect(context.Background())
			wantErr(t, err, `SQS queue "orders" in eu-central-1: `+tc.op, tc.e.msg)
			if got != nil {
				t.Errorf("values %v with the error", got)
			}
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code {
				t.Errorf("error %v: want an API error with code %s", err, tc.code)
			}
			if IsQueueDoesNotExist(err) {
				t.Errorf("IsQueueDoesNotExist(%v) = true", err)
			}
		})
	}
}

func TestBadAttribute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"missing", map[string]string{"ApproximateNumberOfMessagesNotVisible": "3"}, "the answer has no ApproximateNumberOfMessages attribute"},
		{"empty", map[string]string{"ApproximateNumberOfMessages": ""}, `ApproximateNumberOfMessages is "", not a count`},
		{"garbage", map[string]string{"ApproximateNumberOfMessages": "12abc"}, `ApproximateNumberOfMessages is "12abc", not a count`},
		{"fraction", map[string]string{"ApproximateNumberOfMessages": "1.5"}, `"1.5", not a count`},
		{"negative", map[string]string{"ApproximateNumberOfMessages": "-1"}, `"-1", not a count`},
		{"overflow", map[string]string{"ApproximateNumberOfMessages": "9223372036854775808"}, `"9223372036854775808", not a count`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t)
			f.queue("orders", queueURL("orders"), "0")
			f.setAttrs(queueURL("orders"), tc.attrs)
			got, err := build(t, srv, "orders").Collect(context.Background())
			wantErr(t, err, `SQS queue "orders" in eu-central-1: GetQueueAttributes `+queueURL("orders"), tc.want)
			if got != nil {
				t.Errorf("values %v with the error", got)
			}
		})
	}
}

func TestEmptyQueueURL(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders", "", "1")
	_, err := build(t, srv, "orders").Collect(context.Background())
	wantErr(t, err, `SQS queue "orders" in eu-central-1: GetQueueUrl: the answer has no QueueUrl`)
}

func TestTimeout(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders", queueURL("orders"), "1")
	f.hang = true
	isolate(t)
	o := opts(srv)
	o.RequestTimeout = 100 * time.Millisecond
	c, err := New(cfg(keys("orders")), o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Collect(context.Background())
	wantErr(t, err, `SQS queue "orders" in eu-central-1: no answer within 100ms`, "GetQueueUrl")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Collect took %s with a 100ms timeout", d)
	}

	// The caller's own deadline is the caller's: not reported as the request timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Collect(ctx)
	wantErr(t, err, `SQS queue "orders" in eu-central-1`)
	if strings.Contains(err.Error(), "no answer within") {
		t.Errorf("error %q blames the request timeout for the caller's deadline", err)
	}
}

func TestNew(t *testing.T) {
	isolate(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name    string
		kind    collector.Kind
		keys    map[string]string
		regions []string
		want    []string // parts of the error; none: no error
	}{
		{"valid", collector.External, keys("orders"), nil, nil},
		{"no kind", "", keys("orders_2-b.fifo"), nil, nil},
		{"80 characters", "", keys(strings.Repeat("q", 75) + ".fifo"), nil, nil},
		{"no queue-name", collector.External, map[string]string{"region": region}, nil, []string{`key "queue-name": is required`}},
		{"empty queue-name", collector.External, map[string]string{"queue-name": "", "region": region}, nil, []string{`key "queue-name": is required`}},
		{"queue URL as name", collector.External, keys(queueURL("orders")), nil, []string{`key "queue-name": "https://sqs.eu-central-1.amazonaws.com/123456789012/orders": an SQS queue name has only letters`}},
		{"dot in name", collector.External, keys("orders.dlq"), nil, []string{`key "queue-name": "orders.dlq"`}},
		{"81 characters", collector.External, keys(strings.Repeat("q", 81)), nil, []string{`key "queue-name"`, "at most 80 characters"}},
		{"no region", collector.External, map[string]string{"queue-name": "orders"}, nil, []string{`key "region": is required`}},
		{"unknown region", collector.External, map[string]string{"queue-name": "orders", "region": "ap-south-1"}, nil,
			[]string{`key "region": "ap-south-1": not a configured region (--aws-region): configured are us-east-1, eu-central-1`}},
		{"no region configured", collector.External, keys("orders"), []string{}, []string{`key "region": "eu-central-1": no AWS region is configured (--aws-region)`}},
		{"Pods kind", collector.Pods, keys("orders"), nil, []string{"serves External metrics, not Pods"}},
		{"everything at once", collector.Object, map[string]string{"region": "mars-1"}, nil,
			[]string{"not Object", `key "queue-name": is required`, `key "region": "mars-1": not a configured region`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(srv)
			if tc.regions != nil {
				o.Regions = tc.regions
			}
			c := cfg(tc.keys)
			c.Kind = tc.kind
			got, err := New(c, o)
			if tc.want == nil {
				if err != nil || got == nil {
					t.Fatalf("New: %v, %v", got, err)
				}
				return
			}
			if got != nil {
				t.Errorf("a collector with the error")
			}
			wantErr(t, err, tc.want...)
		})
	}
}

// fakeAPI is an API with canned answers, for the client-building tests.
type fakeAPI struct{ region string }

func (a *fakeAPI) GetQueueUrl(context.Context, *awssqs.GetQueueUrlInput, ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error) {
	return &awssqs.GetQueueUrlOutput{QueueUrl: aws.String("https://sqs." + a.region + ".amazonaws.com/" + account + "/orders")}, nil
}

func (a *fakeAPI) GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error) {
	return &awssqs.GetQueueAttributesOutput{Attributes: map[string]string{"ApproximateNumberOfMessages": "6"}}, nil
}

func TestFactorySharesOneClientPerRegion(t *testing.T) {
	var mu sync.Mutex
	built := map[string]int{}
	fail := true
	o := Options{
		Regions: []string{"us-east-1", region},
		NewClient: func(_ context.Context, r string) (API, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return nil, errors.New("no configuration")
			}
			built[r]++
			return &fakeAPI{region: r}, nil
		},
		Clock: clocktesting.NewFakePassiveClock(now),
	}
	factory := Factory(o)

	// A failed build is reported and not kept.
	_, err := factory(cfg(keys("orders")))
	wantErr(t, err, `key "region": "eu-central-1": no configuration`)
	fail = false

	for _, r := range []string{region, region, "us-east-1", region} {
		c, err := factory(cfg(map[string]string{"queue-name": "orders", "region": r}))
		if err != nil {
			t.Fatalf("factory: %v", err)
		}
		got, err := c.Collect(context.Background())
		if err != nil || len(got) != 1 || got[0].Value.Value() != 6 {
			t.Errorf("Collect: %v, %v; want 6", got, err)
		}
	}
	if diff := cmp.Diff(map[string]int{region: 1, "us-east-1": 1}, built); diff != "" {
		t.Errorf("clients built per region (-want +got):\n%s", diff)
	}
}

func TestRegionsGetTheirOwnSignature(t *testing.T) {
	f, srv := newFake(t)
	f.region = "us-east-1"
	f.queue("orders", queueURL("orders"), "8")
	isolate(t)
	c, err := Factory(opts(srv))(cfg(map[string]string{"queue-name": "orders", "region": "us-east-1"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Collect(context.Background())
	if err != nil || len(got) != 1 || got[0].Value.Value() != 8 {
		t.Errorf("Collect: %v, %v; want 8", got, err)
	}
}

func TestConcurrentCollects(t *testing.T) {
	f, srv := newFake(t)
	f.queue("orders", queueURL("orders"), "12")
	c := build(t, srv, "orders")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := c.Collect(context.Background())
			if err != nil || len(got) != 1 || got[0].Value.Value() != 12 {
				t.Errorf("Collect: %v, %v; want 12", got, err)
			}
		})
	}
	wg.Wait()
}

func TestCachedURLGoneTwice(t *testing.T) {
	// The cached URL names no queue, and GetQueueUrl still answers it (SQS can, for a
	// while after a deletion): one retry, an error, and the URL is not kept.
	f, srv := newFake(t)
	f.queue("orders", queueURL("orders"), "4")
	c := build(t, srv, "orders")
	wantValue(t, c, 4)
	f.takeCalls()
	f.mu.Lock()
	delete(f.attrs, queueURL("orders"))
	f.mu.Unlock()
	_, err := c.Collect(context.Background())
	wantErr(t, err, `SQS queue "orders" in eu-central-1: GetQueueAttributes `+queueURL("orders"), "does not exist")
	want := []string{"GetQueueAttributes " + queueURL("orders"), "GetQueueUrl orders", "GetQueueAttributes " + queueURL("orders")}
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	f.queue("orders", queueURL("orders"), "5")
	wantValue(t, c, 5)
	if diff := cmp.Diff([]string{"GetQueueUrl orders", "GetQueueAttributes " + queueURL("orders")}, f.takeCalls()); diff != "" {
		t.Errorf("calls after the queue is back (-want +got):\n%s", diff)
	}
}

func TestIsQueueDoesNotExist(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("QueueDoesNotExist"), false},
		{fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue"}), true},
		{&smithy.GenericAPIError{Code: "QueueDoesNotExist"}, true},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, false},
	} {
		if got := IsQueueDoesNotExist(tc.err); got != tc.want {
			t.Errorf("IsQueueDoesNotExist(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
