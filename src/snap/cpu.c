/* vCPU, irqchip, PIT and kvmclock sections; see internal.h. Every field of
 * KVM's structures is written by name, little-endian; the XSAVE area and the
 * LAPIC register page are architectural byte layouts (Intel SDM vol. 1
 * §13.4, vol. 3 §11.4.1) and go as bytes. MSRs: those KVM lists in
 * KVM_GET_MSR_INDEX_LIST and will read here; a restore only writes MSRs that
 * this KVM lists too. Restore order follows what KVM needs: CPUID came with
 * vCPU creation, then MP state, registers, FPU, XCRs, debug registers, LAPIC,
 * MSRs (TSC before TSC-deadline, as listed), pending events. */
#include <stdlib.h>
#include <string.h>

#include "snap/internal.h"
#include "util/log.h"

#define VCPU_VERSION 1
#define MAX_MSRS 1024

static void put_segment(struct snap_writer *w, const struct kvm_segment *s)
{
	snap_put_u64(w, s->base);
	snap_put_u32(w, s->limit);
	snap_put_u16(w, s->selector);
	snap_put_u8(w, s->type);
	snap_put_u8(w, s->present);
	snap_put_u8(w, s->dpl);
	snap_put_u8(w, s->db);
	snap_put_u8(w, s->s);
	snap_put_u8(w, s->l);
	snap_put_u8(w, s->g);
	snap_put_u8(w, s->avl);
	snap_put_u8(w, s->unusable);
}

static void get_segment(struct snap_section *s, const char *field, struct kvm_segment *seg)
{
	seg->base = snap_u64(s, field);
	seg->limit = snap_u32(s, field);
	seg->selector = snap_u16(s, field);
	seg->type = snap_u8(s, field);
	if (seg->type > 15)
		snap_fail(s, field, "segment type %u", seg->type);
	seg->present = snap_bool(s, field);
	seg->dpl = snap_u8(s, field);
	if (seg->dpl > 3)
		snap_fail(s, field, "dpl %u", seg->dpl);
	seg->db = snap_bool(s, field);
	seg->s = snap_bool(s, field);
	seg->l = snap_bool(s, field);
	seg->g = snap_bool(s, field);
	seg->avl = snap_bool(s, field);
	seg->unusable = snap_bool(s, field);
}

static int kvm_err(const char *what, unsigned i, int err)
{
	log_error("snapshot: vcpu[%u]: %s: %s", i, what, strerror(-err));
	return err;
}

static int save_vcpu(const struct snap_vm *vm, struct snap_writer *w, unsigned i,
		     const uint32_t *msr_list, unsigned nr_msrs, struct kvm_msrs *msrs,
		     struct kvm_msr_entry *out)
{
	const struct kvm_vcpu *v = vm->vcpu[i];
	struct kvm *kvm = vm->kvm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	int err;
	if ((err = kvm_vcpu_get_regs(v, &regs)))
		return kvm_err("registers", i, err);
	if ((err = kvm_vcpu_get_sregs(v, &sregs)))
		return kvm_err("system registers", i, err);
	if ((err = kvm_vcpu_get_lapic(v, &lapic)))
		return kvm_err("LAPIC", i, err);
	if ((err = kvm_vcpu_get_mp_state(v, &mp)))
		return kvm_err("MP state", i, err);
	snap_begin(w, SNAP_VCPU, VCPU_VERSION, i);
	const uint64_t gpr[] = { regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi,
				 regs.rsp, regs.rbp, regs.r8,  regs.r9,  regs.r10, regs.r11,
				 regs.r12, regs.r13, regs.r14, regs.r15, regs.rip, regs.rflags };
	for (unsigned k = 0; k < sizeof(gpr) / sizeof(gpr[0]); k++)
		snap_put_u64(w, gpr[k]);
	const struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es, &sregs.fs,
					     &sregs.gs, &sregs.ss, &sregs.tr, &sregs.ldt };
	for (unsigned k = 0; k < 8; k++)
		put_segment(w, segs[k]);
	snap_put_u64(w, sregs.gdt.base);
	snap_put_u16(w, sregs.gdt.limit);
	snap_put_u64(w, sregs.idt.base);
	snap_put_u16(w, sregs.idt.limit);
	const uint64_t cr[] = { sregs.cr0, sregs.cr2, sregs.cr3, sregs.cr4, sregs.cr8, sregs.efer,
				sregs.apic_base };
	for (unsigned k = 0; k < 7; k++)
		snap_put_u64(w, cr[k]);
	for (unsigned k = 0; k < 4; k++)
		snap_put_u64(w, sregs.interrupt_bitmap[k]);
	/* FPU: the XSAVE area when KVM has it, else the legacy FXSAVE fields. */
	if (kvm->xsave_size) {
		void *x = calloc(1, kvm->xsave_size);
		if (!x)
			return -ENOMEM;
		err = kvm_vcpu_get_xsave(v, x, kvm->xsave_size);
		if (err) {
			free(x);
			return kvm_err("XSAVE state", i, err);
		}
		snap_put_u8(w, 1);
		snap_put_u32(w, (uint32_t)kvm->xsave_size);
		snap_put_bytes(w, x, kvm->xsave_size);
		free(x);
	} else {
		struct kvm_fpu fpu;
		if ((err = kvm_vcpu_get_fpu(v, &fpu)))
			return kvm_err("FPU", i, err);
		snap_put_u8(w, 0);
		snap_put_bytes(w, fpu.fpr, sizeof(fpu.fpr));
		snap_put_u16(w, fpu.fcw);
		snap_put_u16(w, fpu.fsw);
		snap_put_u8(w, fpu.ftwx);
		snap_put_u16(w, fpu.last_opcode);
		snap_put_u64(w, fpu.last_ip);
		snap_put_u64(w, fpu.last_dp);
		snap_put_bytes(w, fpu.xmm, sizeof(fpu.xmm));
		snap_put_u32(w, fpu.mxcsr);
	}
	struct kvm_xcrs xcrs = { 0 };
	if (kvm->xcrs && (err = kvm_vcpu_get_xcrs(v, &xcrs)))
		return kvm_err("XCRs", i, err);
	snap_put_u32(w, xcrs.nr_xcrs);
	for (unsigned k = 0; k < xcrs.nr_xcrs && k < KVM_MAX_XCRS; k++) {
		snap_put_u32(w, xcrs.xcrs[k].xcr);
		snap_put_u64(w, xcrs.xcrs[k].value);
	}
	struct kvm_debugregs dbg = { 0 };
	if (kvm->debugregs && (err = kvm_vcpu_get_debugregs(v, &dbg)))
		return kvm_err("debug registers", i, err);
	snap_put_u8(w, kvm->debugregs);
	for (unsigned k = 0; k < 4; k++)
		snap_put_u64(w, dbg.db[k]);
	snap_put_u64(w, dbg.dr6);
	snap_put_u64(w, dbg.dr7);
	snap_put_bytes(w, lapic.regs, sizeof(lapic.regs));
	struct kvm_vcpu_events ev = { 0 };
	if (kvm->vcpu_events && (err = kvm_vcpu_get_events(v, &ev)))
		return kvm_err("events", i, err);
	snap_put_u8(w, kvm->vcpu_events);
	snap_put_u8(w, ev.exception.injected);
	snap_put_u8(w, ev.exception.nr);
	snap_put_u8(w, ev.exception.has_error_code);
	snap_put_u8(w, ev.exception.pending);
	snap_put_u32(w, ev.exception.error_code);
	snap_put_u8(w, ev.interrupt.injected);
	snap_put_u8(w, ev.interrupt.nr);
	snap_put_u8(w, ev.interrupt.soft);
	snap_put_u8(w, ev.interrupt.shadow);
	snap_put_u8(w, ev.nmi.injected);
	snap_put_u8(w, ev.nmi.pending);
	snap_put_u8(w, ev.nmi.masked);
	snap_put_u32(w, ev.sipi_vector);
	snap_put_u32(w, ev.flags);
	snap_put_u8(w, ev.smi.smm);
	snap_put_u8(w, ev.smi.pending);
	snap_put_u8(w, ev.smi.smm_inside_nmi);
	snap_put_u8(w, ev.smi.latched_init);
	snap_put_u32(w, mp.mp_state);
	/* MSRs: KVM stops at the first it refuses; skip that one and go on. */
	unsigned n = 0;
	for (unsigned k = 0; k < nr_msrs;) {
		msrs->nmsrs = nr_msrs - k;
		for (unsigned j = 0; j < msrs->nmsrs; j++)
			msrs->entries[j] = (struct kvm_msr_entry){ .index = msr_list[k + j] };
		int got = kvm_vcpu_get_msrs(v, msrs);
		if (got < 0)
			return kvm_err("MSRs", i, got);
		for (int j = 0; j < got; j++)
			out[n++] = msrs->entries[j];
		k += (unsigned)got + 1; /* past the refused one */
		if ((unsigned)got == msrs->nmsrs)
			break;
	}
	snap_put_u32(w, n);
	for (unsigned k = 0; k < n; k++) {
		snap_put_u32(w, out[k].index);
		snap_put_u64(w, out[k].data);
	}
	snap_end(w);
	return 0;
}


static void put_pic(struct snap_writer *w, unsigned i, const struct kvm_pic_state *p)
{
	snap_begin(w, SNAP_PIC, 1, i);
	const uint8_t f[] = { p->last_irr, p->irr, p->imr, p->isr, p->priority_add, p->irq_base,
			      p->read_reg_select, p->poll, p->special_mask, p->init_state,
			      p->auto_eoi, p->rotate_on_auto_eoi, p->special_fully_nested_mode,
			      p->init4, p->elcr, p->elcr_mask };
	snap_put_bytes(w, f, sizeof(f));
	snap_end(w);
}

int snap_save_cpus(const struct snap_vm *vm, struct snap_writer *w)
{
	uint32_t *list;
	unsigned nr;
	int err = kvm_msr_index_list(vm->kvm, &list, &nr);
	if (err) {
		log_error("snapshot: cannot list KVM's MSRs: %s", strerror(-err));
		return err;
	}
	if (nr > MAX_MSRS)
		nr = MAX_MSRS;
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + (nr + 1) * sizeof(msrs->entries[0]));
	struct kvm_msr_entry *out = calloc(nr + 1, sizeof(*out));
	if (!msrs || !out)
		err = -ENOMEM;
	for (unsigned i = 0; i < vm->nr_vcpus && !err; i++)
		err = save_vcpu(vm, w, i, list, nr, msrs, out);
	free(out);
	free(msrs);
	free(list);
	if (err)
		return err;
	struct kvm_irqchip chip[3] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
				       { .chip_id = KVM_IRQCHIP_PIC_SLAVE },
				       { .chip_id = KVM_IRQCHIP_IOAPIC } };
	for (unsigned c = 0; c < 3; c++) {
		if ((err = kvm_get_irqchip(vm->kvm, &chip[c]))) {
			log_error("snapshot: cannot read the irqchip: %s", strerror(-err));
			return err;
		}
	}
	put_pic(w, 0, &chip[0].chip.pic);
	put_pic(w, 1, &chip[1].chip.pic);
	const struct kvm_ioapic_state *io = &chip[2].chip.ioapic;
	snap_begin(w, SNAP_IOAPIC, 1, 0);
	snap_put_u64(w, io->base_address);
	snap_put_u32(w, io->ioregsel);
	snap_put_u32(w, io->id);
	snap_put_u32(w, io->irr);
	snap_put_u32(w, KVM_IOAPIC_NUM_PINS);
	for (unsigned p = 0; p < KVM_IOAPIC_NUM_PINS; p++)
		snap_put_u64(w, io->redirtbl[p].bits);
	snap_end(w);
	struct kvm_pit_state2 pit;
	if ((err = kvm_get_pit(vm->kvm, &pit))) {
		log_error("snapshot: cannot read the PIT: %s", strerror(-err));
		return err;
	}
	snap_begin(w, SNAP_PIT, 1, 0);
	for (unsigned c = 0; c < 3; c++) {
		const struct kvm_pit_channel_state *ch = &pit.channels[c];
		snap_put_u32(w, ch->count);
		snap_put_u16(w, ch->latched_count);
		const uint8_t f[] = { ch->count_latched, ch->status_latched, ch->status,
				      ch->read_state, ch->write_state, ch->write_latch,
				      ch->rw_mode, ch->mode, ch->bcd, ch->gate };
		snap_put_bytes(w, f, sizeof(f));
		snap_put_u64(w, (uint64_t)ch->count_load_time);
	}
	snap_put_u32(w, pit.flags);
	snap_end(w);
	struct kvm_clock_data clock = { 0 };
	if (vm->kvm->clock && (err = kvm_get_clock(vm->kvm, &clock))) {
		log_error("snapshot: cannot read kvmclock: %s", strerror(-err));
		return err;
	}
	snap_begin(w, SNAP_CLOCK, 1, 0);
	snap_put_u8(w, vm->kvm->clock);
	snap_put_u64(w, clock.clock);
	snap_end(w);
	return 0;
}

/* ------------------------------------------------------------ restore */

static bool msr_known(const uint32_t *list, unsigned nr, uint32_t index)
{
	for (unsigned k = 0; k < nr; k++)
		if (list[k] == index)
			return true;
	return false;
}

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	bool has_xsave;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	bool has_debugregs, has_events;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_msrs *msrs; /* room for MAX_MSRS */
	void *xsave;           /* kvm->xsave_size bytes */
};

static int parse_vcpu(const struct snap_vm *vm, struct snap_reader *r, unsigned i,
		      struct vcpu_state *st, const uint32_t *list, unsigned nr_list)
{
	struct snap_section s;
	if (snap_find(r, SNAP_VCPU, i, VCPU_VERSION, &s))
		return -EBADMSG;
	__u64 *gpr[] = { &st->regs.rax, &st->regs.rbx, &st->regs.rcx, &st->regs.rdx,
			    &st->regs.rsi, &st->regs.rdi, &st->regs.rsp, &st->regs.rbp,
			    &st->regs.r8,  &st->regs.r9,  &st->regs.r10, &st->regs.r11,
			    &st->regs.r12, &st->regs.r13, &st->regs.r14, &st->regs.r15,
			    &st->regs.rip, &st->regs.rflags };
	for (unsigned k = 0; k < sizeof(gpr) / sizeof(gpr[0]); k++)
		*gpr[k] = snap_u64(&s, "regs");
	static const char *const segname[] = { "sregs.cs", "sregs.ds", "sregs.es", "sregs.fs",
					       "sregs.gs", "sregs.ss", "sregs.tr", "sregs.ldt" };
	struct kvm_segment *segs[] = { &st->sregs.cs, &st->sregs.ds, &st->sregs.es, &st->sregs.fs,
				       &st->sregs.gs, &st->sregs.ss, &st->sregs.tr, &st->sregs.ldt };
	for (unsigned k = 0; k < 8; k++)
		get_segment(&s, segname[k], segs[k]);
	st->sregs.gdt.base = snap_u64(&s, "sregs.gdt");
	st->sregs.gdt.limit = snap_u16(&s, "sregs.gdt");
	st->sregs.idt.base = snap_u64(&s, "sregs.idt");
	st->sregs.idt.limit = snap_u16(&s, "sregs.idt");
	__u64 *cr[] = { &st->sregs.cr0, &st->sregs.cr2, &st->sregs.cr3, &st->sregs.cr4,
			   &st->sregs.cr8, &st->sregs.efer, &st->sregs.apic_base };
	for (unsigned k = 0; k < 7; k++)
		*cr[k] = snap_u64(&s, "sregs.cr");
	for (unsigned k = 0; k < 4; k++)
		st->sregs.interrupt_bitmap[k] = snap_u64(&s, "sregs.interrupt_bitmap");
	st->has_xsave = snap_bool(&s, "fpu.kind");
	if (st->has_xsave) {
		uint32_t size = snap_u32(&s, "xsave.size");
		if (!r->failed && size != vm->kvm->xsave_size)
			return snap_fail(&s, "xsave.size", "%u bytes, this host's KVM uses %zu",
					 size, vm->kvm->xsave_size);
		snap_bytes(&s, "xsave", st->xsave, size);
	} else {
		if (vm->kvm->xsave_size)
			return snap_fail(&s, "fpu.kind", "legacy FPU state, but this KVM has XSAVE");
		snap_bytes(&s, "fpu.fpr", st->fpu.fpr, sizeof(st->fpu.fpr));
		st->fpu.fcw = snap_u16(&s, "fpu.fcw");
		st->fpu.fsw = snap_u16(&s, "fpu.fsw");
		st->fpu.ftwx = snap_u8(&s, "fpu.ftwx");
		st->fpu.last_opcode = snap_u16(&s, "fpu.last_opcode");
		st->fpu.last_ip = snap_u64(&s, "fpu.last_ip");
		st->fpu.last_dp = snap_u64(&s, "fpu.last_dp");
		snap_bytes(&s, "fpu.xmm", st->fpu.xmm, sizeof(st->fpu.xmm));
		st->fpu.mxcsr = snap_u32(&s, "fpu.mxcsr");
	}
	st->xcrs.nr_xcrs = snap_u32(&s, "xcrs.count");
	if (st->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return snap_fail(&s, "xcrs.count", "%u (at most %u)", st->xcrs.nr_xcrs, KVM_MAX_XCRS);
	if (st->xcrs.nr_xcrs && !vm->kvm->xcrs)
		return snap_fail(&s, "xcrs", "this host's KVM cannot restore XCRs");
	for (unsigned k = 0; k < st->xcrs.nr_xcrs; k++) {
		st->xcrs.xcrs[k].xcr = snap_u32(&s, "xcrs.index");
		st->xcrs.xcrs[k].value = snap_u64(&s, "xcrs.value");
	}
	st->has_debugregs = snap_bool(&s, "debugregs.valid");
	for (unsigned k = 0; k < 4; k++)
		st->dbg.db[k] = snap_u64(&s, "debugregs.db");
	st->dbg.dr6 = snap_u64(&s, "debugregs.dr6");
	st->dbg.dr7 = snap_u64(&s, "debugregs.dr7");
	snap_bytes(&s, "lapic", st->lapic.regs, sizeof(st->lapic.regs));
	st->has_events = snap_bool(&s, "events.valid");
	struct kvm_vcpu_events *ev = &st->ev;
	ev->exception.injected = snap_bool(&s, "events.exception");
	ev->exception.nr = snap_u8(&s, "events.exception");
	ev->exception.has_error_code = snap_bool(&s, "events.exception");
	ev->exception.pending = snap_bool(&s, "events.exception");
	ev->exception.error_code = snap_u32(&s, "events.exception");
	if (ev->exception.nr >= 32)
		snap_fail(&s, "events.exception.nr", "vector %u is not an exception",
			  ev->exception.nr);
	ev->interrupt.injected = snap_bool(&s, "events.interrupt");
	ev->interrupt.nr = snap_u8(&s, "events.interrupt");
	ev->interrupt.soft = snap_bool(&s, "events.interrupt");
	ev->interrupt.shadow = snap_u8(&s, "events.interrupt");
	ev->nmi.injected = snap_bool(&s, "events.nmi");
	ev->nmi.pending = snap_bool(&s, "events.nmi");
	ev->nmi.masked = snap_bool(&s, "events.nmi");
	ev->sipi_vector = snap_u32(&s, "events.sipi_vector");
	uint32_t flags = snap_u32(&s, "events.flags");
	ev->smi.smm = snap_bool(&s, "events.smi");
	ev->smi.pending = snap_bool(&s, "events.smi");
	ev->smi.smm_inside_nmi = snap_bool(&s, "events.smi");
	ev->smi.latched_init = snap_bool(&s, "events.smi");
	/* Only the parts mote saves; payloads and triple faults are not. */
	ev->flags = flags & (KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			     KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM);
	if (ev->sipi_vector > 0xff)
		snap_fail(&s, "events.sipi_vector", "%u", ev->sipi_vector);
	if (ev->smi.smm)
		snap_fail(&s, "events.smi", "the vCPU was in SMM, which mote does not emulate");
	st->mp.mp_state = snap_u32(&s, "mp_state");
	if (st->mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		snap_fail(&s, "mp_state", "%u", st->mp.mp_state);
	uint32_t n = snap_u32(&s, "msrs.count");
	if (n > MAX_MSRS)
		return snap_fail(&s, "msrs.count", "%u (at most %u)", n, MAX_MSRS);
	st->msrs->nmsrs = n;
	for (unsigned k = 0; k < n && !r->failed; k++) {
		uint32_t index = snap_u32(&s, "msrs.index");
		st->msrs->entries[k] = (struct kvm_msr_entry){ .index = index,
							       .data = snap_u64(&s, "msrs.value") };
		if (!r->failed && !msr_known(list, nr_list, index))
			return snap_fail(&s, "msrs.index", "MSR %#x is not one KVM saves here",
					 index);
	}
	return snap_done(&s);
}

static int apply_vcpu(const struct snap_vm *vm, unsigned i, struct vcpu_state *st)
{
	const struct kvm_vcpu *v = vm->vcpu[i];
	int err;
	if ((err = kvm_vcpu_set_mp_state(v, &st->mp)))
		return kvm_err("KVM refused the MP state", i, err);
	if ((err = kvm_vcpu_set_regs(v, &st->regs)))
		return kvm_err("KVM refused the registers", i, err);
	if ((err = kvm_vcpu_set_sregs(v, &st->sregs)))
		return kvm_err("KVM refused the system registers", i, err);
	err = st->has_xsave ? kvm_vcpu_set_xsave(v, st->xsave, vm->kvm->xsave_size)
			    : kvm_vcpu_set_fpu(v, &st->fpu);
	if (err)
		return kvm_err("KVM refused the FPU state", i, err);
	if (st->xcrs.nr_xcrs && (err = kvm_vcpu_set_xcrs(v, &st->xcrs)))
		return kvm_err("KVM refused the XCRs", i, err);
	if (st->has_debugregs && vm->kvm->debugregs &&
	    (err = kvm_vcpu_set_debugregs(v, &st->dbg)))
		return kvm_err("KVM refused the debug registers", i, err);
	if ((err = kvm_vcpu_set_lapic(v, &st->lapic)))
		return kvm_err("KVM refused the LAPIC", i, err);
	int set = kvm_vcpu_set_msrs(v, st->msrs);
	if (set < 0)
		return kvm_err("KVM refused the MSRs", i, set);
	if ((unsigned)set != st->msrs->nmsrs) {
		log_error("snapshot: vcpu[%u]: msrs: KVM refused MSR %#x", i,
			  st->msrs->entries[set].index);
		return -EINVAL;
	}
	if (st->has_events && vm->kvm->vcpu_events && (err = kvm_vcpu_set_events(v, &st->ev)))
		return kvm_err("KVM refused the pending events", i, err);
	return 0;
}

static void get_pic(struct snap_section *s, struct kvm_pic_state *p)
{
	uint8_t f[16];
	snap_bytes(s, "state", f, sizeof(f));
	*p = (struct kvm_pic_state){
		.last_irr = f[0], .irr = f[1], .imr = f[2], .isr = f[3], .priority_add = f[4],
		.irq_base = f[5], .read_reg_select = f[6], .poll = f[7], .special_mask = f[8],
		.init_state = f[9], .auto_eoi = f[10], .rotate_on_auto_eoi = f[11],
		.special_fully_nested_mode = f[12], .init4 = f[13], .elcr = f[14],
		.elcr_mask = f[15] };
	if (p->priority_add > 7 || p->init_state > 3 || (p->irq_base & 7))
		snap_fail(s, "state", "an 8259 state no PIC can be in");
}

static int load_chips(const struct snap_vm *vm, struct snap_reader *r, bool apply)
{
	struct kvm_irqchip chip[3] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
				       { .chip_id = KVM_IRQCHIP_PIC_SLAVE },
				       { .chip_id = KVM_IRQCHIP_IOAPIC } };
	struct snap_section s;
	for (unsigned c = 0; c < 2; c++) {
		if (snap_find(r, SNAP_PIC, c, 1, &s))
			return -EBADMSG;
		get_pic(&s, &chip[c].chip.pic);
		if (snap_done(&s))
			return -EBADMSG;
	}
	if (snap_find(r, SNAP_IOAPIC, 0, 1, &s))
		return -EBADMSG;
	struct kvm_ioapic_state *io = &chip[2].chip.ioapic;
	io->base_address = snap_u64(&s, "base_address");
	io->ioregsel = snap_u32(&s, "ioregsel");
	io->id = snap_u32(&s, "id");
	io->irr = snap_u32(&s, "irr");
	uint32_t pins = snap_u32(&s, "pins");
	if (!r->failed && pins != KVM_IOAPIC_NUM_PINS)
		return snap_fail(&s, "pins", "%u, KVM's IOAPIC has %u", pins, KVM_IOAPIC_NUM_PINS);
	if (!r->failed && io->base_address != X86_IOAPIC_ADDR)
		return snap_fail(&s, "base_address", "%#llx, mote's IOAPIC is at %#llx",
				 (unsigned long long)io->base_address, X86_IOAPIC_ADDR);
	for (unsigned p = 0; p < KVM_IOAPIC_NUM_PINS; p++)
		io->redirtbl[p].bits = snap_u64(&s, "redirtbl");
	if (snap_done(&s))
		return -EBADMSG;
	struct kvm_pit_state2 pit = { 0 };
	if (snap_find(r, SNAP_PIT, 0, 1, &s))
		return -EBADMSG;
	for (unsigned c = 0; c < 3; c++) {
		struct kvm_pit_channel_state *ch = &pit.channels[c];
		ch->count = snap_u32(&s, "channel.count");
		ch->latched_count = snap_u16(&s, "channel.latched_count");
		uint8_t f[10];
		snap_bytes(&s, "channel", f, sizeof(f));
		ch->count_latched = f[0];
		ch->status_latched = f[1];
		ch->status = f[2];
		ch->read_state = f[3];
		ch->write_state = f[4];
		ch->write_latch = f[5];
		ch->rw_mode = f[6];
		ch->mode = f[7];
		ch->bcd = f[8];
		ch->gate = f[9];
		ch->count_load_time = (int64_t)snap_u64(&s, "channel.count_load_time");
		/* KVM marks a channel never programmed with mode 0xff. */
		if (!r->failed && (ch->count > 0x10000 || ch->rw_mode > 3 || (ch->mode > 5 && ch->mode != 0xff) ||
				   ch->read_state > 4 || ch->write_state > 4 || ch->bcd > 1 ||
				   ch->gate > 1 || ch->status_latched > 1 || ch->count_latched > 3))
			return snap_fail(&s, "channel", "channel %u: a state no 8254 can be in", c);
	}
	pit.flags = snap_u32(&s, "flags");
	if (pit.flags & ~KVM_PIT_FLAGS_HPET_LEGACY)
		snap_fail(&s, "flags", "%#x", pit.flags);
	if (snap_done(&s))
		return -EBADMSG;
	struct kvm_clock_data clock = { 0 };
	if (snap_find(r, SNAP_CLOCK, 0, 1, &s))
		return -EBADMSG;
	bool has_clock = snap_bool(&s, "valid");
	clock.clock = snap_u64(&s, "clock");
	if (snap_done(&s))
		return -EBADMSG;
	if (!apply)
		return 0;
	int err = 0;
	for (unsigned c = 0; c < 3 && !err; c++)
		err = kvm_set_irqchip(vm->kvm, &chip[c]);
	if (!err)
		err = kvm_set_pit(vm->kvm, &pit);
	if (!err && has_clock && vm->kvm->clock)
		err = kvm_set_clock(vm->kvm, &clock);
	if (err)
		log_error("snapshot: KVM refused the irqchip, PIT or clock state: %s", strerror(-err));
	return err;
}

int snap_load_cpus(const struct snap_vm *vm, struct snap_reader *r, bool apply)
{
	uint32_t *list = NULL;
	unsigned nr = 0;
	int err = kvm_msr_index_list(vm->kvm, &list, &nr);
	if (err) {
		log_error("snapshot: cannot list KVM's MSRs: %s", strerror(-err));
		return err;
	}
	struct vcpu_state *st = calloc(1, sizeof(*st));
	if (st) {
		st->msrs = calloc(1, sizeof(*st->msrs) + MAX_MSRS * sizeof(st->msrs->entries[0]));
		st->xsave = calloc(1, vm->kvm->xsave_size ? vm->kvm->xsave_size : 1);
	}
	if (!st || !st->msrs || !st->xsave) {
		err = -ENOMEM;
		goto out;
	}
	/* The irqchip before the vCPUs: the LAPICs hang off it. */
	err = load_chips(vm, r, apply);
	for (unsigned i = 0; i < vm->nr_vcpus && !err; i++) {
		err = parse_vcpu(vm, r, i, st, list, nr);
		if (!err && apply)
			err = apply_vcpu(vm, i, st);
	}
	if (!err && snap_has(r, SNAP_VCPU, vm->nr_vcpus)) {
		struct snap_section s = { .r = r, .id = SNAP_VCPU, .index = vm->nr_vcpus };
		err = snap_fail(&s, "index", "more vCPUs than the config's %u", vm->nr_vcpus);
	}
out:
	if (st) {
		free(st->msrs);
		free(st->xsave);
	}
	free(st);
	free(list);
	return err;
}
