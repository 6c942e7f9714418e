// Creates the service's database user in docker-compose.prod.yml. The mongo image's
// entrypoint runs this once, when it initialises an empty data directory, on a temporary
// server that listens on 127.0.0.1 only (after creating the root user from
// MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD). The user lives in the app
// database (so MONGODB_URI says authSource=app) and may read and write that database only:
// no other database, no user or cluster administration.
const password = process.env.MONGODB_APP_PASSWORD;
if (!password) {
  throw new Error('MONGODB_APP_PASSWORD is not set: the service has no database user');
}
db.getSiblingDB('app').createUser({
  user: 'app',
  pwd: password,
  roles: [{ role: 'readWrite', db: 'app' }],
});
