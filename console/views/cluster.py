"""The 集群 page: nodes and proxies now (admins and supervisors), as `ivr cluster status` shows them."""

from __future__ import annotations

from aiohttp import web

from console.auth import roles
from console.cluster_view import cluster_view
from console.context import CONSOLE
from console.pages import nav, render

routes = web.RouteTableDef()
nav("/cluster", "集群", "admin", "supervisor", order=45)


@routes.get("/cluster")
@roles("admin", "supervisor")
async def cluster_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return render(request, "cluster.html", cluster=await cluster_view(console.settings(), console.redis))
