// A frontend's documents as graphql-codegen's client preset reads them: `graphql()` returns a typed
// document, whose result and variables types the compiler checks below.
import { graphql } from '../../.generated/codegen';
import type { ResultOf, VariablesOf } from '@graphql-typed-document-node/core';

export const GoalTree = graphql(`
  query GoalTree($id: ID!) {
    goalStory(id: $id) {
      id
      nodeId
      title
      latestUpdate { status progressPercent actor { name } }
      children(where: { latestUpdate: { status: { in: [AT_RISK, OFF_TRACK] } } }) {
        totalCount
        nodes { ...StoryCard }
      }
    }
  }
`);

export const StoryCard = graphql(`
  fragment StoryCard on GoalStory {
    id
    title
    teams { name }
  }
`);

export const StoryEvents = graphql(`
  subscription StoryEvents($after: String) {
    coordinationEvents(after: $after) { cursor eventType referenceId }
  }
`);

type GoalTreeResult = ResultOf<typeof GoalTree>;
type GoalTreeVariables = VariablesOf<typeof GoalTree>;

export const variables: GoalTreeVariables = { id: 'g-1' };

export function headline(result: GoalTreeResult): string {
  const story = result.goalStory;
  if (!story) return 'not found';
  const status: 'ON_TRACK' | 'AT_RISK' | 'OFF_TRACK' | 'COMPLETED' | 'PAUSED' | null | undefined =
    story.latestUpdate?.status;
  return `${story.title}: ${status ?? 'no update'} (${story.children.totalCount} at risk below)`;
}
