"""One module per area of the console; each has ``routes`` (an aiohttp RouteTableDef) and adds
its menu entries with :func:`console.pages.nav`. :data:`console.app.VIEWS` lists them."""
