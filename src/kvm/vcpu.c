/* Per-vCPU KVM calls; see kvm.h. */
#include "kvm/kvm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int vcpu_ioctl(const struct kvm_vcpu *vcpu, unsigned long req, const void *arg)
{
	int r;
	do
		r = ioctl(vcpu->fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int kvm_vcpu_init(const struct kvm *kvm, unsigned id, struct kvm_vcpu *vcpu)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->id = id;
	vcpu->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return -errno;
	vcpu->run_size = kvm->run_mmap_size;
	void *p = mmap(NULL, (size_t)vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vcpu->fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(vcpu->fd);
		vcpu->fd = -1;
		return err;
	}
	vcpu->run = p;
	return 0;
}

void kvm_vcpu_fini(struct kvm_vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->run_size);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

int kvm_vcpu_run(struct kvm_vcpu *vcpu)
{
	/* No EINTR retry here: an interrupted run is how the VMM stops a vCPU. */
	return ioctl(vcpu->fd, KVM_RUN, 0) < 0 ? -errno : 0;
}

int kvm_vcpu_get_regs(const struct kvm_vcpu *vcpu, struct kvm_regs *regs)
{
	return vcpu_ioctl(vcpu, KVM_GET_REGS, regs);
}

int kvm_vcpu_set_regs(const struct kvm_vcpu *vcpu, const struct kvm_regs *regs)
{
	return vcpu_ioctl(vcpu, KVM_SET_REGS, regs);
}

int kvm_vcpu_get_sregs(const struct kvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
	return vcpu_ioctl(vcpu, KVM_GET_SREGS, sregs);
}

int kvm_vcpu_set_sregs(const struct kvm_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return vcpu_ioctl(vcpu, KVM_SET_SREGS, sregs);
}

int kvm_vcpu_set_fpu(const struct kvm_vcpu *vcpu, const struct kvm_fpu *fpu)
{
	return vcpu_ioctl(vcpu, KVM_SET_FPU, fpu);
}

int kvm_vcpu_set_cpuid(const struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid)
{
	return vcpu_ioctl(vcpu, KVM_SET_CPUID2, cpuid);
}

int kvm_vcpu_set_msr(const struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	/* struct kvm_msrs ends in a flexible array: give it room for one. */
	uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)) / 8] = { 0 };
	struct kvm_msrs *msrs = (struct kvm_msrs *)buf;
	msrs->nmsrs = 1;
	msrs->entries[0].index = index;
	msrs->entries[0].data = value;
	int r;
	do
		r = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 1 ? 0 : -EINVAL; /* KVM returns how many it set */
}

int kvm_vcpu_get_lapic(const struct kvm_vcpu *vcpu, struct kvm_lapic_state *lapic)
{
	return vcpu_ioctl(vcpu, KVM_GET_LAPIC, lapic);
}

int kvm_vcpu_set_lapic(const struct kvm_vcpu *vcpu, const struct kvm_lapic_state *lapic)
{
	return vcpu_ioctl(vcpu, KVM_SET_LAPIC, lapic);
}

int kvm_vcpu_get_fpu(const struct kvm_vcpu *vcpu, struct kvm_fpu *fpu)
{
	return vcpu_ioctl(vcpu, KVM_GET_FPU, fpu);
}

int kvm_vcpu_get_xsave(const struct kvm_vcpu *vcpu, void *buf, size_t size)
{
	return vcpu_ioctl(vcpu, size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
			  buf);
}

int kvm_vcpu_set_xsave(const struct kvm_vcpu *vcpu, const void *buf, size_t size)
{
	return vcpu_ioctl(vcpu, KVM_SET_XSAVE, buf);
}

int kvm_vcpu_get_xcrs(const struct kvm_vcpu *vcpu, struct kvm_xcrs *xcrs)
{
	return vcpu_ioctl(vcpu, KVM_GET_XCRS, xcrs);
}

int kvm_vcpu_set_xcrs(const struct kvm_vcpu *vcpu, const struct kvm_xcrs *xcrs)
{
	return vcpu_ioctl(vcpu, KVM_SET_XCRS, xcrs);
}

int kvm_vcpu_get_debugregs(const struct kvm_vcpu *vcpu, struct kvm_debugregs *d)
{
	return vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, d);
}

int kvm_vcpu_set_debugregs(const struct kvm_vcpu *vcpu, const struct kvm_debugregs *d)
{
	return vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, d);
}

int kvm_vcpu_get_events(const struct kvm_vcpu *vcpu, struct kvm_vcpu_events *e)
{
	return vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, e);
}

int kvm_vcpu_set_events(const struct kvm_vcpu *vcpu, const struct kvm_vcpu_events *e)
{
	return vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, e);
}

int kvm_vcpu_get_mp_state(const struct kvm_vcpu *vcpu, struct kvm_mp_state *mp)
{
	return vcpu_ioctl(vcpu, KVM_GET_MP_STATE, mp);
}

int kvm_vcpu_set_mp_state(const struct kvm_vcpu *vcpu, const struct kvm_mp_state *mp)
{
	return vcpu_ioctl(vcpu, KVM_SET_MP_STATE, mp);
}

static int msrs_ioctl(const struct kvm_vcpu *vcpu, unsigned long req, const struct kvm_msrs *m)
{
	int r;
	do
		r = ioctl(vcpu->fd, req, m);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int kvm_vcpu_get_msrs(const struct kvm_vcpu *vcpu, struct kvm_msrs *msrs)
{
	return msrs_ioctl(vcpu, KVM_GET_MSRS, msrs);
}

int kvm_vcpu_set_msrs(const struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs)
{
	return msrs_ioctl(vcpu, KVM_SET_MSRS, msrs);
}
