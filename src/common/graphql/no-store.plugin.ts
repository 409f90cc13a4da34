/**
 * Every GraphQL answer says `Cache-Control: no-store`: answers are per API key and never reusable by a
 * cache in between.
 *
 * Apollo Server installs its cache-control plugin unless told not to (app.module.ts disables it), and that
 * plugin's only visible effect here was this header: no field carries a cache hint. Its price was a
 * `willResolveField` hook, for which Apollo wraps every resolver of the schema and runs the hook on every
 * field of every request (about a twelfth of the bytes the server allocated under classify load, in a
 * sampling heap profile). This plugin sets the header once per answer instead.
 */
import type { ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';

const listener: GraphQLRequestListener<object> = {
  async willSendResponse({ response }) {
    response.http.headers.set('cache-control', 'no-store');
  },
};

export const noStorePlugin: ApolloServerPlugin<object> = {
  async requestDidStart() {
    return listener;
  },
};
