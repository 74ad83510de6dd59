package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error in the OpenAI API's shape:
// {"error": {"message", "type", "param", "code"}} with an HTTP status.
type apiError struct {
	Status     int           `json:"-"`
	RetryAfter time.Duration `json:"-"` // sets Retry-After when > 0

	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// badRequest is a 400 naming the offending field (param).
func badRequest(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: strp(param), Message: fmt.Sprintf(format, args...)}
}

// unsupported is a 400 for a valid OpenAI field this server does not
// implement.
func unsupported(param, what string) *apiError {
	e := badRequest(param, "%s is not supported by this server", what)
	e.Code = strp("unsupported_parameter")
	return e
}

func modelNotFound(name string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("model"), Code: strp("model_not_found"),
		Message: fmt.Sprintf("The model %q does not exist; GET /v1/models lists the served model", name)}
}

func unavailable(msg string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: strp("service_unavailable"), Message: msg, RetryAfter: retry}
}

func overloaded(msg string, retry time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: strp("rate_limit_exceeded"), Message: msg, RetryAfter: retry}
}

func internalError(msg string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: msg}
}

// writeError sends e as the response.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"response encoding failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
