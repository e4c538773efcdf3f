// Package sqs is the AWS SQS collector: the External metric "sqs-queue-length" is the
// approximate number of messages in one SQS queue (its ApproximateNumberOfMessages
// attribute: visible messages, not those in flight or delayed), read with
// aws-sdk-go-v2 through the SDK's default credential chain (environment, shared files,
// web identity/IRSA, the instance or container role).
//
// Keys (the metric selector's labels):
//
//	queue-name  the queue's name, not its URL (required): up to 80 letters, digits,
//	            hyphens and underscores, a FIFO queue's ending in ".fifo"
//	region      the queue's AWS region (required), one of the regions the process was
//	            configured with (--aws-region, Options.Regions)
//
// Other keys (the selector's "type" label) are left to their owners.
//
// A collection resolves the queue's URL with GetQueueUrl, once: the URL is cached, and
// resolved again when SQS says the queue does not exist (a queue deleted and created
// again). Then GetQueueAttributes reads ApproximateNumberOfMessages, served as an integer
// quantity with the selector's labels. A missing or malformed attribute and every API
// error are errors naming the queue and its region, never 0. The IAM actions needed are
// sqs:GetQueueUrl and sqs:GetQueueAttributes.
//
// Differences from the original:
//   - Creating a collector makes no request: the original resolved the URL when the
//     HPA was read, so an unreachable AWS or a queue not yet created failed the
//     collector's creation (retried every 30 s); here it is a collection's error,
//     reported as every collection error is.
//   - The original kept the URL it found first for the collector's life; here a
//     QueueDoesNotExist answer makes the collector resolve it again.
//   - Requests have a timeout (Options.RequestTimeout) and honour the caller's context;
//     the original's had neither.
//   - The queue name is checked when the collector is built, and errors name the queue
//     and the region; a negative count is an error.
//   - Cross-account queues (GetQueueUrl's QueueOwnerAWSAccountId) are not supported,
//     as in the original.
package sqs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	smithy "github.com/aws/smithy-go"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/clock"

	"github.com/custompodautoscaler/cpa/internal/clip"
	"github.com/custompodautoscaler/cpa/internal/collector"
)

// Type is the collector type of External metrics this package serves.
const Type = "sqs-queue-length"

// Keys are the configuration keys the collector reads.
var Keys = []string{KeyQueueName, KeyRegion}

// Configuration keys.
const (
	KeyQueueName = "queue-name"
	KeyRegion    = "region"
)

// DefaultRequestTimeout bounds one collection (GetQueueUrl when needed, then
// GetQueueAttributes, the SDK's retries included).
const DefaultRequestTimeout = 15 * time.Second

// attribute is the one queue attribute read.
const attribute = string(types.QueueAttributeNameApproximateNumberOfMessages)

// excerpt is how much of a user-supplied value an error quotes.
const excerpt = 200

// queueName is what SQS accepts as a queue name.
var queueName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.fifo)?$`)

// maxQueueName is the longest queue name SQS accepts, ".fifo" included.
const maxQueueName = 80

// API is the part of the SQS client the collector calls; *awssqs.Client is one.
type API interface {
	GetQueueUrl(ctx context.Context, in *awssqs.GetQueueUrlInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

// Options are what the collectors of one process share.
type Options struct {
	// Regions are the regions metrics may name (--aws-region). A metric naming
	// another region is an error.
	Regions []string
	// NewClient builds the client of one region, once per region and Factory; nil
	// means DefaultClient with Credentials, BaseEndpoint and RetryMaxAttempts, which
	// NewClient replaces.
	NewClient func(ctx context.Context, region string) (API, error)
	// Credentials replace the SDK's default credential chain (for tests: static
	// credentials); nil means the default chain.
	Credentials aws.CredentialsProvider
	// BaseEndpoint is where requests go instead of the region's SQS endpoint (a local
	// server in tests); empty means AWS's endpoint (or the SDK's AWS_ENDPOINT_URL_SQS).
	BaseEndpoint string
	// RetryMaxAttempts caps the SDK's attempts per request; 0 means the SDK's default.
	RetryMaxAttempts int
	// RequestTimeout bounds one collection; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Clock stamps the values; nil means the real clock.
	Clock clock.PassiveClock
}

func (o Options) withDefaults() Options {
	if o.NewClient == nil {
		creds, endpoint, attempts := o.Credentials, o.BaseEndpoint, o.RetryMaxAttempts
		o.NewClient = func(ctx context.Context, region string) (API, error) {
			return DefaultClient(ctx, region, creds, endpoint, attempts)
		}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// DefaultClient is an SQS client for region, configured by config.LoadDefaultConfig
// (the environment, the shared configuration files, the default credential chain). A
// non-nil creds replaces the credential chain, a non-empty endpoint AWS's endpoint, and
// attempts above 0 the SDK's attempts per request. It makes no request.
func DefaultClient(ctx context.Context, region string, creds aws.CredentialsProvider, endpoint string, attempts int) (*awssqs.Client, error) {
	load := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if creds != nil {
		load = append(load, config.WithCredentialsProvider(creds))
	}
	if attempts > 0 {
		load = append(load, config.WithRetryMaxAttempts(attempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration for %s: %w", region, err)
	}
	return awssqs.NewFromConfig(cfg, func(o *awssqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// clients builds each region's client once, for the collectors of one Factory.
type clients struct {
	newClient func(ctx context.Context, region string) (API, error)

	mu    sync.Mutex
	built map[string]API
}

func newClients(opts Options) *clients {
	return &clients{newClient: opts.NewClient, built: map[string]API{}}
}

func (p *clients) get(region string) (API, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.built[region]; ok {
		return c, nil
	}
	// Building a client reads local configuration only; no request is made.
	c, err := p.newClient(context.Background(), region)
	if err != nil {
		return nil, err // not kept: the configuration may be fixed later
	}
	p.built[region] = c
	return c, nil
}

// Factory returns a collector.Factory building collectors with opts; they share one
// client per region. Register it for collector.External.
func Factory(opts Options) collector.Factory {
	opts = opts.withDefaults()
	p := newClients(opts)
	return func(cfg collector.Config) (collector.Collector, error) { return newCollector(cfg, opts, p) }
}

// New validates cfg's keys, reporting every problem at once, each naming its key and
// value. It builds its own client; collectors from one Factory share theirs.
func New(cfg collector.Config, opts Options) (collector.Collector, error) {
	opts = opts.withDefaults()
	return newCollector(cfg, opts, newClients(opts))
}

// Collector collects one queue's length.
type Collector struct {
	client  API
	queue   string
	region  string
	timeout time.Duration
	labels  map[string]string
	clock   clock.PassiveClock

	mu  sync.Mutex
	url string // the cached queue URL; empty: not resolved
}

var _ collector.Collector = (*Collector)(nil)

func newCollector(cfg collector.Config, opts Options, p *clients) (collector.Collector, error) {
	var errs []error
	bad := func(key, value string, err error) {
		errs = append(errs, fmt.Errorf("key %q: %q: %w", key, clip.String(value, excerpt), err))
	}
	if cfg.Kind != "" && cfg.Kind != collector.External {
		errs = append(errs, fmt.Errorf("the %s collector serves External metrics, not %s", Type, cfg.Kind))
	}

	queue, ok := cfg.Keys[KeyQueueName]
	switch {
	case !ok || queue == "":
		errs = append(errs, fmt.Errorf("key %q: is required (the SQS queue's name)", KeyQueueName))
	case len(queue) > maxQueueName:
		bad(KeyQueueName, queue, fmt.Errorf("an SQS queue name is at most %d characters", maxQueueName))
	case !queueName.MatchString(queue):
		bad(KeyQueueName, queue, errors.New(`an SQS queue name has only letters, digits, "-" and "_" (and a FIFO queue's ends in ".fifo")`))
	}

	var client API
	region, ok := cfg.Keys[KeyRegion]
	switch {
	case !ok || region == "":
		errs = append(errs, fmt.Errorf("key %q: is required (the queue's AWS region)", KeyRegion))
	case len(opts.Regions) == 0:
		bad(KeyRegion, region, errors.New("no AWS region is configured (--aws-region)"))
	case !slices.Contains(opts.Regions, region):
		bad(KeyRegion, region, fmt.Errorf("not a configured region (--aws-region): configured are %s", strings.Join(opts.Regions, ", ")))
	default:
		c, err := p.get(region)
		if err != nil {
			bad(KeyRegion, region, err)
		}
		client = c
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	labels := make(map[string]string, len(cfg.Labels))
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	return &Collector{
		client: client, queue: queue, region: region, timeout: opts.RequestTimeout,
		labels: labels, clock: opts.Clock,
	}, nil
}

// Collect returns the queue's approximate number of messages.
func (c *Collector) Collect(parent context.Context) ([]collector.Value, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s: %w", c.timeout, err)
		}
		return nil, fmt.Errorf("SQS queue %q in %s: %w", c.queue, c.region, err)
	}
	labels := make(map[string]string, len(c.labels))
	for k, v := range c.labels {
		labels[k] = v
	}
	return []collector.Value{{
		Labels:    labels,
		Value:     *resource.NewQuantity(n, resource.DecimalSI),
		Timestamp: c.clock.Now(),
	}}, nil
}

// count reads the attribute through the cached URL, resolving it first when there is
// none, and once more when SQS says the cached one names no queue.
func (c *Collector) count(ctx context.Context) (int64, error) {
	url, cached, err := c.queueURL(ctx)
	if err != nil {
		return 0, err
	}
	n, err := c.attributes(ctx, url)
	if !IsQueueDoesNotExist(err) {
		return n, err
	}
	c.forget(url)
	if !cached {
		return 0, err
	}
	if url, _, err = c.queueURL(ctx); err != nil {
		return 0, err
	}
	n, err = c.attributes(ctx, url)
	if IsQueueDoesNotExist(err) {
		c.forget(url)
	}
	return n, err
}

// queueURL returns the cached URL, or resolves and caches it; cached tells which.
func (c *Collector) queueURL(ctx context.Context) (url string, cached bool, err error) {
	c.mu.Lock()
	url = c.url
	c.mu.Unlock()
	if url != "" {
		return url, true, nil
	}
	out, err := c.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(c.queue)})
	if err != nil {
		return "", false, fmt.Errorf("GetQueueUrl: %w", err)
	}
	if out.QueueUrl == nil || *out.QueueUrl == "" {
		return "", false, errors.New("GetQueueUrl: the answer has no QueueUrl")
	}
	url = *out.QueueUrl
	c.mu.Lock()
	c.url = url
	c.mu.Unlock()
	return url, false, nil
}

// forget drops url from the cache unless another collection has replaced it already.
func (c *Collector) forget(url string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.url == url {
		c.url = ""
	}
}

func (c *Collector) attributes(ctx context.Context, url string) (int64, error) {
	out, err := c.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return 0, fmt.Errorf("GetQueueAttributes %s: %w", url, err)
	}
	s, ok := out.Attributes[attribute]
	if !ok {
		return 0, fmt.Errorf("GetQueueAttributes %s: the answer has no %s attribute", url, attribute)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("GetQueueAttributes %s: %s is %q, not a count of messages", url, attribute, clip.String(s, excerpt))
	}
	return n, nil
}

// IsQueueDoesNotExist tells whether err is SQS's answer that a queue does not exist,
// whichever error code (JSON or query protocol) it came with.
func IsQueueDoesNotExist(err error) bool {
	if err == nil {
		return false
	}
	var notExist *types.QueueDoesNotExist
	if errors.As(err, &notExist) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
			return true
		}
	}
	return false
}
