/* The network-interface endpoints (Firecracker's PUT and PATCH
 * /network-interfaces/{iface_id}, and the config file's
 * "network-interfaces" section): a tap interface per entry, with optional
 * rx/tx rate limiters. Before boot the interface is recorded in the API's
 * configuration; after boot only the rate limiters can change, and the
 * event loop hands them to the running device.
 *
 * Firecracker has no user-mode networking, so neither does its API: every
 * interface here is a tap (`mote run --net user` is the way to slirp). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/routes.h"
#include "vmm.h"

static const char *const put_fields[] = { "iface_id", "host_dev_name", "guest_mac",
					   "rx_rate_limiter", "tx_rate_limiter" };
static const char *const patch_fields[] = { "iface_id", "rx_rate_limiter", "tx_rate_limiter" };

static int only_fields(json_t *b, const char *const *names, size_t n, char *err, size_t len)
{
	const char *key;
	json_t *v;
	if (!json_is_object(b)) {
		snprintf(err, len, "the request body must be a JSON object");
		return -EINVAL;
	}
	json_object_foreach(b, key, v) {
		size_t i = 0;
		while (i < n && strcmp(key, names[i]))
			i++;
		if (i == n) {
			snprintf(err, len, "unknown field '%s'", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* A RateLimiter {bandwidth, ops} in field `name` of b; null or absent: no
 * limit (api_parse_rate_limiter, shared with drives and entropy). */
static int parse_limiter(json_t *b, const char *name, struct ratelimit_cfg *out, char *err,
			 size_t len)
{
	char sub[400];
	if (api_parse_rate_limiter(json_object_get(b, name), out, sub, sizeof(sub)) == 0)
		return 0;
	snprintf(err, len, "%s: %.200s", name, sub);
	return -EINVAL;
}

static int check_id(json_t *b, const char *id, char *err, size_t len)
{
	size_t n = strlen(id);
	bool ok = n > 0 && n <= CONFIG_NET_ID_LEN;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		     (id[i] >= '0' && id[i] <= '9') || id[i] == '_';
	if (!ok) {
		snprintf(err, len, "invalid id '%.80s': 1 to %u letters, digits or '_'", id,
			 CONFIG_NET_ID_LEN);
		return -EINVAL;
	}
	json_t *v = json_object_get(b, "iface_id");
	if (!json_is_string(v)) {
		snprintf(err, len, v ? "field 'iface_id' must be a string" : "missing field 'iface_id'");
		return -EINVAL;
	}
	if (strcmp(json_string_value(v), id)) {
		snprintf(err, len, "iface_id '%.80s' does not match the path's '%s'",
			 json_string_value(v), id);
		return -EINVAL;
	}
	return 0;
}

/* Everything of a PUT body, into *net (which is not touched on failure). */
static int parse_put(json_t *b, const char *id, struct vm_net *net, char *err, size_t len)
{
	struct vm_net n = { .kind = VM_NET_TAP };
	if (only_fields(b, put_fields, 5, err, len) || check_id(b, id, err, len))
		return -EINVAL;
	json_t *dev = json_object_get(b, "host_dev_name"), *mac = json_object_get(b, "guest_mac");
	if (!json_is_string(dev) || !config_ifname_ok(json_string_value(dev),
						      strlen(json_string_value(dev)))) {
		snprintf(err, len, dev ? "host_dev_name must be an interface name (1 to %u bytes, no "
				       "'/', ':', '%%', spaces)"
				       : "missing field 'host_dev_name'", CONFIG_IFNAME_LEN);
		return -EINVAL;
	}
	if (mac && (!json_is_string(mac) ||
		    config_parse_mac(json_string_value(mac), strlen(json_string_value(mac)), n.mac))) {
		snprintf(err, len, "guest_mac must be a unicast MAC address aa:bb:cc:dd:ee:ff");
		return -EINVAL;
	}
	if (parse_limiter(b, "rx_rate_limiter", &n.rx, err, len) ||
	    parse_limiter(b, "tx_rate_limiter", &n.tx, err, len))
		return -EINVAL;
	snprintf(n.id, sizeof(n.id), "%s", id);
	snprintf(n.tap, sizeof(n.tap), "%s", json_string_value(dev));
	*net = n;
	return 0;
}

int api_netif_validate_put(json_t *b, const char *id, char *err, size_t len)
{
	struct vm_net n;
	return parse_put(b, id, &n, err, len);
}

void api_netif_put(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	char err[256];
	struct vm_net n;
	if (parse_put(b, id, &n, err, sizeof(err))) {
		api_fault(r, 400, "%s", err);
		return;
	}
	unsigned i = 0;
	while (i < ctl->nr_nets && strcmp(ctl->nets[i].id, id))
		i++;
	for (unsigned j = 0; j < ctl->nr_nets; j++) {
		if (j != i && !strcmp(ctl->nets[j].tap, n.tap)) {
			api_fault(r, 400, "host_dev_name %s is already used by %s", n.tap,
				  ctl->nets[j].id);
			return;
		}
	}
	if (i == ctl->nr_nets && i == CONFIG_MAX_NETS) {
		api_fault(r, 400, "at most %u network interfaces", CONFIG_MAX_NETS);
		return;
	}
	if (!(n.mac[0] | n.mac[1] | n.mac[2] | n.mac[3] | n.mac[4] | n.mac[5])) {
		/* No guest_mac: QEMU's default series, as `mote run` picks. */
		static const uint8_t mac0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
		memcpy(n.mac, mac0, 6);
		n.mac[5] = (uint8_t)(mac0[5] + i);
	}
	ctl->nets[i] = n;
	if (i == ctl->nr_nets)
		ctl->nr_nets++;
}

int api_netif_validate_patch(json_t *b, const char *id, char *err, size_t len)
{
	struct ratelimit_cfg rl;
	if (only_fields(b, patch_fields, 3, err, len) || check_id(b, id, err, len))
		return -EINVAL;
	if (parse_limiter(b, "rx_rate_limiter", &rl, err, len) ||
	    parse_limiter(b, "tx_rate_limiter", &rl, err, len))
		return -EINVAL;
	return 0;
}

void api_netif_patch(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	char err[256];
	struct ratelimit_cfg rx, tx;
	bool has_rx = json_object_get(b, "rx_rate_limiter"), has_tx = json_object_get(b, "tx_rate_limiter");
	unsigned i = 0;
	if (parse_limiter(b, "rx_rate_limiter", &rx, err, sizeof(err)) ||
	    parse_limiter(b, "tx_rate_limiter", &tx, err, sizeof(err))) {
		api_fault(r, 400, "%s", err);
		return;
	}
	while (i < ctl->nr_nets && strcmp(ctl->nets[i].id, id))
		i++;
	if (i == ctl->nr_nets) {
		api_fault(r, 400, "no network interface %s", id);
		return;
	}
	int e = vmm_net_set_limits(ctl->vm, id, has_rx ? &rx : NULL, has_tx ? &tx : NULL);
	if (e) {
		api_fault(r, 400, "cannot update %s's rate limiters: %s", id, strerror(-e));
		return;
	}
	if (has_rx)
		ctl->nets[i].rx = rx;
	if (has_tx)
		ctl->nets[i].tx = tx;
}

json_t *api_netif_json(const struct api_ctl *ctl)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < ctl->nr_nets; i++) {
		const struct vm_net *n = &ctl->nets[i];
		char mac[18];
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o,s:o}", "iface_id", n->id,
						   "host_dev_name", n->tap, "guest_mac", mac,
						   "rx_rate_limiter", api_rate_limiter_json(&n->rx),
						   "tx_rate_limiter", api_rate_limiter_json(&n->tx)));
	}
	return a;
}
