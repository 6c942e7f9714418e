// Package clerk holds Clerk's objects and everything that reads them: the user object as
// webhooks and the Backend API carry it, and its mapping to the stored user (User,
// User.StoreUser); the organization and membership objects as webhooks carry them, and their
// mappings (Organization.StoreOrganization, OrganizationMembership.StoreMembership); the
// Backend API client over clerk-sdk-go (API); and the reader of the Dashboard's user exports
// (ReadExport). The contract between the webhook bridge and the Inngest functions (the names
// and ids under which Clerk's events travel through Inngest) is package clerk/event. The
// stand-in for the Backend API that tests use is the separate package clerk/clerkfake.
package clerk
