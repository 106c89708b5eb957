// Package initclient is the apiserver's side of its contract with the system init (PID 1): what
// the API needs from the init (Init), and a client that asks for it over a Unix socket.
//
// # The init socket protocol (version 1)
//
// The system init listens on a Unix stream socket, /run/ballast/init.sock, mode 0600 and owned by
// root (only root may ask the init to restart services or reboot). Each connection carries one
// exchange:
//
//  1. The client writes one JSON object (the request) followed by a newline, at most 64 KiB.
//  2. The init writes one JSON object (the response) followed by a newline, at most 1 MiB, and
//     closes the connection.
//
// Requests:
//
//	{"version": 1, "op": "services"}
//	{"version": 1, "op": "restart", "services": ["containerd", "host-containerd"]}
//	{"version": 1, "op": "reboot"}
//
// Responses have "ok"; when it is false, "error" says why:
//
//	{"ok": true, "services": [{"id": "apiserver", "state": "ready", "pid": 312, "restarts": 0,
//	  "last_exit": "", "error": ""}, ...]}                 answer to services
//	{"ok": true}                                            answer to restart and reboot
//	{"ok": false, "error": "unknown service \"x\""}
//
// services lists every supervised service in start order. state is the supervisor's state name
// (waiting, running, ready, backoff, stopping, stopped, finished, failed); pid is 0 when no
// instance runs; restarts counts instances started after the first; last_exit describes how the
// previous instance ended ("exit status 1", "signal: killed"), error why a failed service failed.
//
// restart checks every named service first and restarts none if one is unknown. It answers once
// each service has been stopped and started again (not necessarily ready), in the order given;
// the client waits up to 60 seconds.
//
// reboot answers {"ok": true} before the init starts shutting down, so the answer always reaches
// the client; the reboot then proceeds as after SIGTERM to PID 1.
//
// A request with an unknown op, a version other than 1, or that is not valid JSON gets
// {"ok": false, "error": ...}. The init must not block on a client that sends nothing: it reads
// the request with a deadline (5 seconds in Serve).
//
// Service logs are not part of the protocol: the init writes each service's output to
// /run/ballast/logs/<service>.log, and the apiserver reads those files directly (Files.Logs).
//
// Serve implements the init's side of the protocol over any Handler, so the system init only
// provides the three operations.
package initclient
