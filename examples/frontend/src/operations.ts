import { graphql } from './gql';

// The example's operations. `npm run example:codegen` reads these `graphql()` calls and generates their
// result and variable types, so `execute()` below is typed end to end from the gateway's schema.

/** Starts the connect flow: the gateway asks Context.IO for a connect token and the page to send the user to. */
export const CreateConnectToken = graphql(`
  mutation CreateConnectToken($input: CreateConnectTokenInput!) {
    createConnectToken(input: $input) {
      token
      browserRedirectUrl
    }
  }
`);

/**
 * Back at the callback: the token says whether the user finished, and which account now holds the mailbox.
 * `username` is not shown: it is the one field here that reads the account itself, not the token's copy of it,
 * so an account deleted since answers NOT_FOUND rather than as it was.
 */
export const ConnectedAccount = graphql(`
  query ConnectedAccount($token: ID!) {
    connectToken(token: $token) {
      token
      used
      email
      account {
        id
        username
        emailAddresses
        firstName
        lastName
        sources {
          label
          email
          server
          status
        }
      }
    }
  }
`);
