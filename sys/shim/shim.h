/* The DPDK headers ispmux binds, plus exported wrappers of their static inline functions. */
#ifndef ISPMUX_SHIM_H
#define ISPMUX_SHIM_H

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_jhash.h>
#include <rte_prefetch.h>
#include <rte_version.h>
#include <rte_meter.h>

uint16_t ispmux_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t ispmux_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *ispmux_pktmbuf_alloc(struct rte_mempool *mp);
int ispmux_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void ispmux_pktmbuf_free(struct rte_mbuf *m);
void ispmux_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n);
unsigned ispmux_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned ispmux_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned ispmux_ring_count(const struct rte_ring *r);
unsigned ispmux_lcore_id(void);
int ispmux_errno(void);
void ispmux_prefetch0(const volatile void *p);
uint64_t ispmux_rdtsc(void);
uint64_t ispmux_tsc_hz(void);
int ispmux_pktmbuf_is_contiguous(const struct rte_mbuf *m);

/* rte_meter's trTCM checks are static inline; colours are enum rte_color values. */
int ispmux_meter_trtcm_blind(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p,
	uint64_t time, uint32_t len);
int ispmux_meter_trtcm_aware(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p,
	uint64_t time, uint32_t len, int pre);
/* Benchmark anchor: n colour-blind checks, check i on meters[idx[i] & mask] with len[i] at
 * time t0 + i * step, the check inlined as a DPDK application would have it; counts colours
 * into counts[3]. */
void ispmux_meter_trtcm_run(struct rte_meter_trtcm *meters, uint32_t mask,
	struct rte_meter_trtcm_profile *p, const uint32_t *idx, const uint32_t *len, uint64_t n,
	uint64_t t0, uint64_t step, uint64_t *counts);

#endif
