"""The GraphQL API: Strawberry types over the query plan and the write service, served at /graphql."""

from .route import PATH, GraphQLApp, graphql_app
from .schema import make_schema

__all__ = ["PATH", "GraphQLApp", "graphql_app", "make_schema"]
