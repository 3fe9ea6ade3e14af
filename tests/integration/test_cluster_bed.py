"""The cluster test bed itself: two engines serve one node, Redis is a Sentinel group."""

from __future__ import annotations

import redis.asyncio as aioredis

from testbed.bed import TestBed
from testbed.processes import pid_alive, wait_port


async def test_two_engines_and_a_sentinel_group_serve_one_node(cluster: TestBed, cluster_redis: aioredis.Redis) -> None:
    st = cluster.state
    assert st and len(st.engine_ports) == 2 and len(set(st.engine_ports)) == 2
    assert all(pid_alive(pid) for pid in st.engine_pids)
    assert all(wait_port(port, 1) for port in [*st.engine_ports, *st.web_ports])
    # each engine is told of both (the dialplan tries them in turn) and reaches Redis through Sentinel
    for index in range(2):
        env = st.engine_env(index)
        assert env["IVR_AGI_PORT"] == str(st.engine_ports[index])
        assert env["IVR_AGI_ENGINES"] == ",".join(f"127.0.0.1:{p}" for p in st.engine_ports)
        assert env["IVR_REDIS_SENTINELS"] == ",".join(f"127.0.0.1:{p}" for p in st.sentinel_ports)
    assert cluster.redis_master_port() == st.redis_ports[0]
    replication = await cluster_redis.info("replication")
    assert replication["role"] == "master" and replication["connected_slaves"] == 2
    assert (await cluster_redis.config_get("appendonly"))["appendonly"] == "yes"
