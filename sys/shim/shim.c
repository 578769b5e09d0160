/* Exported wrappers of DPDK's static inline functions, so Rust can call them. */
#include "shim.h"

uint16_t ispmux_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t ispmux_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *ispmux_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int ispmux_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void ispmux_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void ispmux_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n)
{
	rte_pktmbuf_free_bulk(mbufs, n);
}

unsigned ispmux_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned ispmux_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned ispmux_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

unsigned ispmux_lcore_id(void)
{
	return rte_lcore_id();
}

int ispmux_errno(void)
{
	return rte_errno;
}

void ispmux_prefetch0(const volatile void *p)
{
	rte_prefetch0(p);
}

uint64_t ispmux_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t ispmux_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

int ispmux_pktmbuf_is_contiguous(const struct rte_mbuf *m)
{
	return rte_pktmbuf_is_contiguous(m);
}

int ispmux_meter_trtcm_blind(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p,
	uint64_t time, uint32_t len)
{
	return rte_meter_trtcm_color_blind_check(m, p, time, len);
}

int ispmux_meter_trtcm_aware(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p,
	uint64_t time, uint32_t len, int pre)
{
	return rte_meter_trtcm_color_aware_check(m, p, time, len, (enum rte_color)pre);
}

void ispmux_meter_trtcm_run(struct rte_meter_trtcm *meters, uint32_t mask,
	struct rte_meter_trtcm_profile *p, const uint32_t *idx, const uint32_t *len, uint64_t n,
	uint64_t t0, uint64_t step, uint64_t *counts)
{
	uint64_t c[3] = {0, 0, 0};
	uint64_t i;

	for (i = 0; i < n; i++)
		c[rte_meter_trtcm_color_blind_check(&meters[idx[i] & mask], p, t0 + i * step,
			len[i])]++;
	counts[0] = c[0];
	counts[1] = c[1];
	counts[2] = c[2];
}
