/* Unit tests for src/api/routes.c: api_request_parse(), the API thread's
 * half of a request (route, unsupported routes, id and body limits, JSON,
 * validation), each refusal with its status and message; and the rule that
 * a microVM is started at most once, however the start is asked for. The
 * VMM is tests/fuzz/fake_vmm.c, which counts the VMs it creates. */
#include "api/routes.h"
#include "util/log.h"
#include "vmm.h"

#include "../fuzz/fake_vmm.h"

#include "unit.h"

static struct api_request req;
static char err[600];

static int parse(const char *method, const char *uri, const char *body)
{
	json_decref(req.body);
	err[0] = '\0';
	return api_request_parse(&req, method, uri, body, body ? strlen(body) : 0, err,
				 sizeof(err));
}

static int teardown(void **state)
{
	json_decref(req.body);
	req.body = NULL;
	return 0;
}

static void test_refusals(void **state)
{
	char long_path[600], long_id[100];
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	snprintf(long_id, sizeof(long_id), "/drives/%065d", 0);

	assert_int_equal(parse(NULL, "/", NULL), 405);
	assert_string_equal(err, "only GET, PUT and PATCH are served");
	assert_int_equal(parse("GET", long_path, NULL), 400);
	assert_string_equal(err, "the path is too long");
	assert_int_equal(parse("GET", "/nope?x=1", NULL), 400);
	assert_string_equal(err, "no route GET /nope");
	assert_int_equal(parse("PUT", "/mmds", "{}"), 400);
	assert_string_equal(err, "MMDS is not supported");
	assert_int_equal(parse("PUT", long_id, "{}"), 400);
	assert_string_equal(err, "the id in the path is too long");
	assert_int_equal(parse("PUT", "/entropy", NULL), 400);
	assert_string_equal(err, "a JSON body is required");
	assert_int_equal(parse("PUT", "/entropy", "{\"rate_limiter\": "), 400);
	assert_memory_equal(err, "invalid JSON: ", 14);
	assert_int_equal(parse("PUT", "/entropy", "{\"x\": 1}"), 400);
	assert_string_equal(err, "unknown field 'x'");
	assert_null(req.route);
	assert_null(req.body);
}

static void test_body_limit(void **state)
{
	size_t n = API_MAX_BODY + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(parse("PUT", "/entropy", big), 400);
	assert_string_equal(err, "the request body of 51201 bytes is larger than the limit of 51200");
	big[API_MAX_BODY - 1] = '}';
	big[API_MAX_BODY] = '\0';
	assert_int_equal(parse("PUT", "/entropy", big), 0); /* exactly the limit */
	free(big);
}

static void test_accepted(void **state)
{
	assert_int_equal(parse("GET", "/machine-config?pretty#top", NULL), 0);
	assert_string_equal(req.route->path, "/machine-config");
	assert_null(req.body);
	assert_string_equal(req.id, "");
	assert_int_equal(parse("PUT", "/drives/root_1",
			       "{\"drive_id\": \"root_1\", \"path_on_host\": \"/proc/self/exe\", "
			       "\"is_root_device\": true}"),
			 0);
	assert_string_equal(req.route->path, "/drives/");
	assert_string_equal(req.id, "root_1");
	assert_true(json_is_object(req.body));
}

/* The config file starts the VM; a later InstanceStart must not start (and
 * lose) another one, nor may a second config file (its pre-boot sections
 * are refused first). */
static void test_started_once(void **state)
{
	struct evloop loop;
	struct api_options opts = { .id = "unit" };
	struct api_ctl ctl = { .opts = &opts, .loop = &loop, .vcpus = 1, .mem_mib = 256 };
	struct api_reply r;
	/* Any readable regular file passes validation; the fake VMM reads nothing. */
	const char *file = "{\"boot-source\": {\"kernel_image_path\": \"/proc/self/exe\"}}";
	assert_int_equal(evloop_init(&loop), 0);
	api_metrics_init(&ctl.metrics, &loop, &ctl.vm);
	fake_vmm_creates = 0;

	assert_int_equal(api_config_file(&ctl, file, strlen(file)), 0);
	assert_int_equal(fake_vmm_creates, 1);
	assert_non_null(ctl.vm);
	assert_int_equal(parse("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 0);
	api_apply(&ctl, req.route, req.body, req.id, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "{\"fault_message\":\"the microVM is already running\"}");
	free(r.body);
	unit_log_begin(state);
	assert_int_equal(api_config_file(&ctl, file, strlen(file)), -EINVAL);
	assert_string_equal(unit_log_text(),
			    "mote: error: config file: /boot-source: {\"fault_message\":\"PUT "
			    "/boot-source is only valid before the microVM starts\"}\n");
	unit_log_clear();
	/* Without sections, straight to the start (the fuzzer's case). */
	assert_int_equal(api_config_file(&ctl, "{}", 2), -EINVAL);
	assert_string_equal(unit_log_text(), "mote: error: config file: {\"fault_message\":\"the "
					     "microVM is already running\"}\n");
	unit_log_end(state);
	assert_int_equal(fake_vmm_creates, 1);
	vmm_destroy(ctl.vm);
	ctl.vm = NULL;
	api_ctl_fini(&ctl);
	evloop_fini(&loop);
}

int main(void)
{
#define T(fn) cmocka_unit_test_teardown(fn, teardown)
	const struct CMUnitTest tests[] = {
		T(test_refusals),
		T(test_body_limit),
		T(test_accepted),
		T(test_started_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
