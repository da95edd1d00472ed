package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own (so
// that several servers can live in one process, as in tests):
//
//	dejavu_requests_total{endpoint,status}           requests answered (status 499: the client went away first)
//	dejavu_request_duration_seconds{endpoint}        time to answer, streams included
//	dejavu_prompt_tokens_total                       prompt tokens processed
//	dejavu_completion_tokens_total                   tokens generated
//	dejavu_queue_depth                               requests waiting for a generation slot
//	dejavu_active_generations                        generations running
//	dejavu_time_to_first_token_seconds               request arrival to the first generated text
//	dejavu_time_per_output_token_milliseconds        generation time per token after the prompt
//	dejavu_sparsity_density{kind="mlp"|"heads"}      fraction of MLP neurons / attention heads the
//	                                                 last finished generation computed (1 for dense)
//
// plus the Go runtime and process collectors.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	promptTok  prometheus.Counter
	outTok     prometheus.Counter
	queueDepth prometheus.Gauge
	active     prometheus.Gauge
	ttft       prometheus.Histogram
	msPerToken prometheus.Histogram
	density    *prometheus.GaugeVec
	handler    http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dejavu_requests_total", Help: "HTTP requests answered, by endpoint and status (499: the client went away before an answer).",
		}, []string{"endpoint", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dejavu_request_duration_seconds", Help: "Time from a request's arrival to the end of its answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"endpoint"}),
		promptTok: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dejavu_prompt_tokens_total", Help: "Prompt tokens processed (tokens in).",
		}),
		outTok: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dejavu_completion_tokens_total", Help: "Tokens generated (tokens out).",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dejavu_queue_depth", Help: "Requests waiting for a generation slot.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dejavu_active_generations", Help: "Generations running.",
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dejavu_time_to_first_token_seconds", Help: "Time from a request's arrival (queueing included) to its first generated text.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		msPerToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dejavu_time_per_output_token_milliseconds", Help: "Generation time per generated token, prompt processing excluded, in milliseconds.",
			Buckets: []float64{1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500, 1000},
		}),
		density: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dejavu_sparsity_density", Help: "Fraction of MLP neurons (kind=mlp) and attention heads (kind=heads) computed per decode step by the last finished generation (1 for dense inference).",
		}, []string{"kind"}),
	}
	m.density.WithLabelValues("mlp").Set(1)
	m.density.WithLabelValues("heads").Set(1)
	m.reg.MustRegister(m.requests, m.duration, m.promptTok, m.outTok, m.queueDepth, m.active,
		m.ttft, m.msPerToken, m.density,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}
