/* `mote migrate ...`: drives a running mote's PUT /migrate from the command
 * line and prints the progress GET /migrate reports. */
#ifndef MOTE_API_CLIENT_H
#define MOTE_API_CLIENT_H

/* argv[0] is "migrate". Returns the process's exit status: 0 when the
 * destination has the VM, 1 otherwise (after one line on stderr). */
int api_client_migrate(int argc, char **argv);

#endif
