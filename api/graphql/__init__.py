"""The GraphQL API: Strawberry types over the query plan and the write service, served at /graphql."""

from api.graphql.ide import routes as ide_routes
from api.graphql.route import PATH, GraphQLApp, graphql_app
from api.graphql.schema import make_schema

__all__ = ["PATH", "GraphQLApp", "graphql_app", "ide_routes", "make_schema"]
