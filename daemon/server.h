/*
 * The assembly: makes the event loop, the pools, the listeners and the
 * line transport's clients, wires the transport to the protocol and the
 * protocol to the application, and handles signals (SIGHUP reload,
 * SIGTERM drain). The one place that names the daemon's global state.
 */
#ifndef SERVER_H
#define SERVER_H

struct config;

/* Sets up everything from cfg (taken) and runs the loop until stopped.
 * Returns the exit status. */
int server_run(struct config *cfg);

#endif
