/* tests/fuzz/fake_vmm.c: a stand-in for src/vmm.c, shared by the API and
 * flag harnesses and the routes unit test. */
#ifndef MOTE_FAKE_VMM_H
#define MOTE_FAKE_VMM_H

/* How many times vmm_create() built a (fake) VM. */
extern unsigned fake_vmm_creates;

#endif
