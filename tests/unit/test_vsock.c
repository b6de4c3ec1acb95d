/* Unit tests for virtio-vsock's pure parts: the packet header (layout and
 * the checks on what the guest sends, src/virtio/vsock.c) and the host
 * handshake line (src/backend/vsock_uds.c). The device itself is driven by
 * the vsock test guest and by tests/fuzz/fuzz_vsock.c. */
#include "backend/vsock_uds.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/vsock.h"

#include "unit.h"

#define CID 3

static struct vsock_hdr good(void)
{
	return (struct vsock_hdr){ .src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = 1000,
				   .dst_port = 52, .len = 0, .type = VSOCK_TYPE_STREAM,
				   .op = VSOCK_OP_REQUEST, .buf_alloc = 4096 };
}

static void test_header_layout(void **state)
{
	struct vsock_hdr h = { 0x1122334455667788ull, 2, 0xaabbccdd, 52, 7, 1, 5, 3, 65536, 99 };
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(raw, &h);
	/* virtio 1.2 §5.10.6: packed, little-endian */
	assert_int_equal(raw[0], 0x88);
	assert_int_equal(raw[7], 0x11);
	assert_int_equal(get_le64(raw + 8), 2);
	assert_int_equal(get_le32(raw + 16), 0xaabbccdd);
	assert_int_equal(get_le32(raw + 20), 52);
	assert_int_equal(get_le32(raw + 24), 7);
	assert_int_equal(get_le16(raw + 28), 1);
	assert_int_equal(get_le16(raw + 30), 5);
	assert_int_equal(get_le32(raw + 32), 3);
	assert_int_equal(get_le32(raw + 36), 65536);
	assert_int_equal(get_le32(raw + 40), 99);
	struct vsock_hdr back;
	vsock_hdr_decode(&back, raw);
	assert_true(back.src_cid == h.src_cid && back.dst_cid == h.dst_cid &&
		    back.src_port == h.src_port && back.dst_port == h.dst_port && back.len == h.len &&
		    back.type == h.type && back.op == h.op && back.flags == h.flags &&
		    back.buf_alloc == h.buf_alloc && back.fwd_cnt == h.fwd_cnt);
}

static enum vsock_verdict check(const struct vsock_hdr *h, uint64_t readable)
{
	const char *why = "unset";
	enum vsock_verdict v = vsock_hdr_check(h, readable, CID, &why);
	if (v == VSOCK_PKT_OK)
		assert_null(why);
	else
		assert_non_null(why);
	return v;
}

static void test_check_accepts(void **state)
{
	struct vsock_hdr h = good();
	for (uint16_t op = VSOCK_OP_REQUEST; op <= VSOCK_OP_CREDIT_REQUEST; op++) {
		h.op = op;
		assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_OK);
	}
	h.op = VSOCK_OP_RW;
	h.len = 100;
	assert_int_equal(check(&h, VSOCK_HDR_LEN + 100), VSOCK_PKT_OK);
	assert_int_equal(check(&h, UINT64_MAX), VSOCK_PKT_OK);
	h.len = VSOCK_MAX_PAYLOAD;
	assert_int_equal(check(&h, VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD), VSOCK_PKT_OK);
	h.len = 0;
	assert_int_equal(check(&h, VSOCK_HDR_LEN + 10), VSOCK_PKT_OK); /* room to spare */
}

static void test_check_drops_what_cannot_be_answered(void **state)
{
	struct vsock_hdr h = good();
	for (uint64_t r = 0; r < VSOCK_HDR_LEN; r++)
		assert_int_equal(check(&h, r), VSOCK_PKT_DROP);
	h.src_cid = CID + 1;
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
	h.src_cid = CID | 1ull << 32; /* the reserved upper half must be zero */
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
	h.src_cid = VSOCK_HOST_CID; /* spoofing the host */
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
	h = good();
	h.dst_cid = CID; /* to itself */
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
	h.dst_cid = 2ull | 1ull << 32;
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
	h.dst_cid = UINT64_MAX;
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_DROP);
}

static void test_check_resets_malformed(void **state)
{
	struct vsock_hdr h = good();
	static const uint16_t types[] = { 0, 2, 3, 0xffff };
	for (unsigned i = 0; i < ARRAY_SIZE(types); i++) {
		h.type = types[i];
		assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_RST);
	}
	h = good();
	static const uint16_t ops[] = { 0, 8, 9, 0xffff };
	for (unsigned i = 0; i < ARRAY_SIZE(ops); i++) {
		h.op = ops[i];
		assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_RST);
	}
	h = good();
	h.op = VSOCK_OP_RW;
	h.len = 1;
	assert_int_equal(check(&h, VSOCK_HDR_LEN), VSOCK_PKT_RST);
	h.len = 101;
	assert_int_equal(check(&h, VSOCK_HDR_LEN + 100), VSOCK_PKT_RST);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	assert_int_equal(check(&h, UINT64_MAX), VSOCK_PKT_RST);
	h.len = UINT32_MAX;
	assert_int_equal(check(&h, UINT64_MAX), VSOCK_PKT_RST);
}

static int parse(const char *s, uint32_t *port)
{
	return vsock_uds_parse_connect(s, strlen(s), port);
}

static void test_connect_line(void **state)
{
	uint32_t port = 0;
	assert_int_equal(parse("CONNECT 52\n", &port), 0);
	assert_int_equal(port, 52);
	assert_int_equal(parse("connect 0\n", &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(parse("CoNnEcT\t \t7\n", &port), 0);
	assert_int_equal(port, 7);
	assert_int_equal(parse("CONNECT 4294967295\n", &port), 0);
	assert_int_equal(port, UINT32_MAX);
	assert_int_equal(parse("CONNECT 52\r\n", &port), 0);
	assert_int_equal(parse("CONNECT 000000000000000000052 \n", &port), 0);
	assert_int_equal(port, 52);
	/* 32 bytes at most, newline included */
	char line[40] = "CONNECT ";
	memset(line + 8, '0', 22);
	strcpy(line + 30, "5\n");
	assert_int_equal(strlen(line), VSOCK_UDS_LINE_MAX);
	assert_int_equal(parse(line, &port), 0);
	assert_int_equal(port, 5);
	strcpy(line + 30, "05\n");
	assert_int_equal(parse(line, &port), -EINVAL);
}

static void test_connect_line_bad(void **state)
{
	static const char *const bad[] = {
		"", "\n", "CONNECT\n", "CONNECT \n", "CONNECT 52", "CONNECT52\n", "CONNECTX 52\n",
		"CONNEC 52\n", " CONNECT 52\n", "CONNECT -1\n", "CONNECT +1\n", "CONNECT 0x10\n",
		"CONNECT 52x\n", "CONNECT 52 53\n", "CONNECT 4294967296\n",
		"CONNECT 99999999999999999999\n", "CONNECT 5\n\n", "OK 52\n", "CONNECT 5\r\r\nx",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t port = 77;
		assert_int_equal(parse(bad[i], &port), -EINVAL);
		assert_int_equal(port, 77);
	}
	uint32_t port = 77;
	assert_int_equal(vsock_uds_parse_connect("CONNECT 5\0\n", 11, &port), -EINVAL);
	assert_int_equal(vsock_uds_parse_connect("CONNECT 5\n", 0, &port), -EINVAL);
	assert_int_equal(port, 77);
}

static void test_socket_paths(void **state)
{
	const char *dir = unit_tmpdir();
	char path[512];
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	int l = vsock_uds_listen(path);
	assert_true(l >= 0);
	assert_int_equal(vsock_uds_listen(path), -EADDRINUSE);
	assert_int_equal(vsock_uds_accept(l), -EAGAIN); /* non-blocking */
	assert_int_equal(vsock_uds_connect(path, 52), -ENOENT);
	char port_path[600];
	snprintf(port_path, sizeof(port_path), "%s_52", path);
	int p = vsock_uds_listen(port_path);
	assert_true(p >= 0);
	int c = vsock_uds_connect(path, 52);
	assert_true(c >= 0);
	int a = vsock_uds_accept(p);
	assert_true(a >= 0);
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(vsock_uds_listen(big), -ENAMETOOLONG);
	assert_int_equal(vsock_uds_connect(big, 1), -ENAMETOOLONG);
	close(a);
	close(c);
	close(p);
	close(l);
	unit_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_check_accepts),
		cmocka_unit_test(test_check_drops_what_cannot_be_answered),
		cmocka_unit_test(test_check_resets_malformed),
		cmocka_unit_test(test_connect_line),
		cmocka_unit_test(test_connect_line_bad),
		cmocka_unit_test(test_socket_paths),
	};
	return cmocka_run_group_tests_name("vsock", tests, NULL, NULL);
}
