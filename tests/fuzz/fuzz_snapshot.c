/* libFuzzer harness for the snapshot reader: src/snap/stream.c (framing,
 * checksums, getters) and the restore side of src/snap/cpu.c and
 * src/snap/devices.c (every vCPU, irqchip, PIT, clock, serial, i8042, PCI,
 * MSI-X and virtio field validated, then loaded), against a machine built
 * the way vmm_create builds one (tests/fuzz/fake_machine.h).
 *
 * The input is a whole snapshot file. The seeds in corpus/snapshot/ are
 * snapshots of the counter test guest with rng=1 (gen_corpus_snapshot.sh).
 *
 * Oracles beyond the sanitizers, checked after a load that succeeded: the
 * devices are in states their own code could reach (virtio vectors valid,
 * negotiated features offered, enabled queues' rings inside RAM, MSI-X
 * pending bits within the table, the serial and i8042 buffers within their
 * sizes); and a load that failed left a message starting "snapshot: ". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_machine.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fake_machine_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_vm vm;
	fake_machine_build(&vm);
	struct snap_reader r;
	if (snap_reader_init(&r, data, size) == 0) {
		int err = 0;
		for (int apply = 0; apply < 2 && !err; apply++) {
			err = snap_load_cpus(&vm, &r, apply);
			if (!err)
				err = snap_load_devices(&vm, &r, apply);
		}
		if (getenv("FUZZ_SNAPSHOT_VERBOSE"))
			fprintf(stderr, "load: %d %s\n", err, r.failed ? r.err : "ok");
		if (err && (!r.failed || strncmp(r.err, "snapshot: ", 10)))
			abort();
		if (!err)
			fake_machine_check(&vm);
	} else if (strncmp(r.err, "snapshot: ", 10)) {
		abort();
	}
	fake_machine_free();
	return 0;
}
