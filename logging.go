package main

import (
	"errors"
	"io"
	"log/slog"
)

// logConfig is how the service and the commands log.
type logConfig struct {
	level  slog.Level
	format string
}

// logSettings are the logging settings, for --help.
var logSettings = []setting{
	{name: "LOG_LEVEL", value: "info", help: "debug, info, warn or error."},
	{name: "LOG_FORMAT", value: "text", help: "text or json."},
}

// logging reads LOG_LEVEL and LOG_FORMAT.
func (s *settings) logging() logConfig {
	var c logConfig
	if err := c.level.UnmarshalText([]byte(s.get("LOG_LEVEL"))); err != nil {
		s.fail(errors.New("LOG_LEVEL must be debug, info, warn or error"))
	}
	c.format = s.get("LOG_FORMAT")
	if c.format != "text" && c.format != "json" {
		s.fail(errors.New("LOG_FORMAT must be text or json"))
	}
	return c
}

// newLogger returns the logger of c, writing to w.
func newLogger(w io.Writer, c logConfig) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.level}
	if c.format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// quietLogger is for the embedded database, whose informational messages and warnings (for
// example about the driver's endSessions, which FerretDB does not implement) are noise here.
func quietLogger(w io.Writer, c logConfig) *slog.Logger {
	c.level = max(c.level, slog.LevelError)
	return newLogger(w, c).With("component", "ferretdb")
}
