// A Relay app's documents: a query whose stories are fragments, refetchable by their nodeId (Relay
// generates the query through node(nodeId:)), and a connection paged with @connection.
import { graphql } from 'relay-runtime';

export const rootsQuery = graphql`
  query GoalsRootsQuery($status: GoalStoryStatus!) {
    goalStories(where: { parentId: { isNull: true }, latestUpdate: { status: { eq: $status } } }) {
      totalCount
      nodes {
        ...GoalsStory_story
      }
    }
  }
`;

export const storyFragment = graphql`
  fragment GoalsStory_story on GoalStory @refetchable(queryName: "GoalsStoryRefetchQuery") {
    title
    latestUpdate {
      status
      progressPercent
      actor {
        name
      }
    }
    children(first: 10) {
      totalCount
      nodes {
        nodeId
        title
      }
    }
  }
`;

export const updatesFragment = graphql`
  fragment GoalsUpdates_story on GoalStory
  @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
  @refetchable(queryName: "GoalsUpdatesPaginationQuery") {
    updates(first: $count, after: $cursor, orderBy: [{ field: DATE, direction: DESC }])
      @connection(key: "GoalsUpdates_updates") {
      edges {
        node {
          title
          status
        }
      }
    }
  }
`;
