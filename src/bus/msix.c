/* MSI-X vectors, table and PBA; see msix.h. */
#include "bus/msix.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define CTRL_MASKED 1u

int msix_init(struct msix *m, struct kvm *kvm, unsigned nr)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++)
		m->v[i].gsi = m->v[i].fd = -1;
	if (nr == 0 || nr > MSIX_MAX_VECTORS)
		return -EINVAL;
	pthread_mutex_init(&m->lock, NULL);
	m->ok = true;
	m->kvm = kvm;
	m->nr = nr;
	for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
		m->v[i].ctrl = CTRL_MASKED;
		m->v[i].gsi = m->v[i].fd = -1;
	}
	if (!kvm)
		return 0;
	int err = 0;
	for (unsigned i = 0; i < nr && !err; i++) {
		struct msix_vector *v = &m->v[i];
		v->gsi = kvm_msi_route_alloc(kvm);
		v->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->gsi < 0)
			err = v->gsi;
		else if (v->fd < 0)
			err = -errno;
		else
			err = kvm_irqfd(kvm, v->fd, (unsigned)v->gsi, false);
	}
	if (err)
		msix_fini(m);
	return err;
}

void msix_fini(struct msix *m)
{
	for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
		struct msix_vector *v = &m->v[i];
		if (v->fd >= 0) {
			if (m->kvm && v->gsi >= 0)
				kvm_irqfd(m->kvm, v->fd, (unsigned)v->gsi, true);
			close(v->fd);
		}
		v->fd = v->gsi = -1;
	}
	if (m->ok)
		pthread_mutex_destroy(&m->lock);
	m->ok = false;
}

static bool masked(const struct msix *m, unsigned i)
{
	return !m->enabled || m->function_masked || (m->v[i].ctrl & CTRL_MASKED);
}

/* Sends vector i now; lock held, vector not masked. */
static void deliver(struct msix *m, unsigned i)
{
	struct msix_vector *v = &m->v[i];
	if (m->kvm && !v->routed) {
		uint64_t addr = (uint64_t)v->addr_hi << 32 | v->addr_lo;
		int r = kvm_msi_route_set(m->kvm, (unsigned)v->gsi, addr, v->data);
		if (r < 0) {
			log_ratelimited(LOG_WARN, "msix: cannot route vector %u: %s", i, strerror(-r));
			return;
		}
		v->routed = true;
	}
	m->fired++;
	if (v->fd >= 0) {
		uint64_t one = 1;
		if (write(v->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_ratelimited(LOG_WARN, "msix: irqfd write: %s", strerror(errno));
	}
}

/* Delivers what became unmasked; lock held. */
static void flush_pending(struct msix *m)
{
	for (unsigned i = 0; i < m->nr; i++) {
		if ((m->pending & (1ull << i)) && !masked(m, i)) {
			m->pending &= ~(1ull << i);
			deliver(m, i);
		}
	}
}

void msix_fire(struct msix *m, uint16_t vector)
{
	if (vector >= m->nr)
		return;
	pthread_mutex_lock(&m->lock);
	if (masked(m, vector))
		m->pending |= 1ull << vector;
	else
		deliver(m, vector);
	pthread_mutex_unlock(&m->lock);
}

void msix_control(struct msix *m, bool enabled, bool function_masked)
{
	pthread_mutex_lock(&m->lock);
	m->enabled = enabled;
	m->function_masked = function_masked;
	flush_pending(m);
	pthread_mutex_unlock(&m->lock);
}

void msix_table_io(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	/* Aligned 4- or 8-byte accesses within the table only (§6.8.2). */
	if ((len != 4 && len != 8) || off % len || off >= (uint64_t)m->nr * MSIX_ENTRY_SIZE) {
		if (!is_write)
			memset(data, 0xff, len);
		log_ratelimited(LOG_DEBUG, "msix: bad table access off=%#llx len=%u",
				(unsigned long long)off, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (uint32_t done = 0; done < len; done += 4) {
		unsigned i = (unsigned)((off + done) / MSIX_ENTRY_SIZE);
		unsigned field = (unsigned)((off + done) % MSIX_ENTRY_SIZE) / 4;
		struct msix_vector *v = &m->v[i];
		uint32_t *reg = field == 0 ? &v->addr_lo : field == 1 ? &v->addr_hi
						      : field == 2 ? &v->data : &v->ctrl;
		if (!is_write) {
			put_le32(data + done, *reg);
			continue;
		}
		uint32_t val = get_le32(data + done);
		if (field == 3) {
			v->ctrl = val & CTRL_MASKED;
		} else if (*reg != val) {
			*reg = val;
			v->routed = false; /* rerouted on the next delivery */
		}
	}
	if (is_write)
		flush_pending(m);
	pthread_mutex_unlock(&m->lock);
}

void msix_pba_io(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (is_write)
		return; /* read-only */
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 8 ? (uint8_t)(m->pending >> (8 * (off + i))) : 0;
	pthread_mutex_unlock(&m->lock);
}

void msix_reset(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
	m->enabled = m->function_masked = false;
	m->pending = 0;
	for (unsigned i = 0; i < m->nr; i++) {
		m->v[i].addr_lo = m->v[i].addr_hi = m->v[i].data = 0;
		m->v[i].ctrl = CTRL_MASKED;
		m->v[i].routed = false;
	}
	pthread_mutex_unlock(&m->lock);
}
