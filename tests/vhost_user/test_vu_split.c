#include "vu_test_util.h"
static void t(void **s){(void)s; struct vut *v = vut_new();
 vut_u64(v, VHOST_USER_SET_PROTOCOL_FEATURES, VUT_PF_ALL);
 vut_u64(v, VHOST_USER_SET_FEATURES, VUT_F_ALL);
 vut_set_mem_table(v);
 vut_state(v, VHOST_USER_SET_VRING_NUM, 0, VUT_QSIZE);
 struct vhost_vring_addr a = vut_ring_addr(0);
 vut_ok(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, 0, NULL);
 int fd = vut_eventfd(); uint64_t idx = 0;
 vut_ok(v, VHOST_USER_SET_VRING_KICK, &idx, 8, &fd, 1, 1, NULL);
 int r = vu_dev_queue_ready(v->dev, 0); int k = vu_dev_queue_kickfd(v->dev, 0);
 printf("ready %d kick %d fd %d q.ready %d enabled %d started %d\n", r, k, fd, v->dev->q[0].ready, v->dev->q[0].enabled, v->dev->q[0].started);
 vut_free(v);}
int main(void){const struct CMUnitTest x[]={cmocka_unit_test(t)}; return cmocka_run_group_tests(x,NULL,NULL);}
