"""Model Context Protocol tools and resources for agents, over the write service and the query plan.

`server` assembles the tools (`write_tools`, `read_tools`) and resources
(`resources`, `reference`) into one SDK server; `http` serves it at `/mcp` of
the app, `stdio` for `coco mcp`. Nothing here builds SQL or writes except
through `WriteService`.
"""
