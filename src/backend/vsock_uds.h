/* The host side of vsock in Firecracker's convention: Unix stream sockets.
 * A guest connecting to host port P reaches the socket listening at
 * "<uds>_<P>"; a host program connects to "<uds>" itself and asks for a
 * guest port with the text line "CONNECT <P>\n". These helpers make the
 * sockets (all non-blocking and close-on-exec) and parse that line; the
 * connection state machine is in virtio/vsock.c. */
#ifndef MOTE_BACKEND_VSOCK_UDS_H
#define MOTE_BACKEND_VSOCK_UDS_H

#include <stddef.h>
#include <stdint.h>

/* The longest CONNECT line accepted, '\n' included (Firecracker reads at
 * most 32 bytes too). */
#define VSOCK_UDS_LINE_MAX 32

/* Parses one handshake line: "CONNECT" in any case, blanks (spaces or tabs),
 * a decimal port that fits 32 bits, optional trailing blanks or '\r', and
 * the '\n' that ends line[0..len). 0 with *port set, or -EINVAL. */
int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port);

/* Binds and listens on path (which must not exist). A listening fd, or
 * -errno (-ENAMETOOLONG when it does not fit sun_path). */
int vsock_uds_listen(const char *path);

/* Connects to "<path>_<port>" without blocking. A connected fd, or -errno
 * (-ENAMETOOLONG, -ENOENT, -ECONNREFUSED, -EAGAIN when its backlog is full). */
int vsock_uds_connect(const char *path, uint32_t port);

/* Accepts one pending client: an fd, or -errno (-EAGAIN: none left). */
int vsock_uds_accept(int listen_fd);

#endif
