// Exercises the Brokkr gRPC API from Node.js the way a third-party client would: it loads the
// .proto files at run time (no generated code), calls the admin API with a bearer key, reads the
// rich error details (google.rpc.Status with ErrorInfo/BadRequest), and plays an agent on
// AgentSessionService.Connect: hello -> welcome -> stack update -> ack -> health report.
//
// Input (environment):
//   BROKKR_SERVER     broker gRPC address, host:port (plaintext)
//   BROKKR_ADMIN_KEY  an admin key
//   BROKKR_AGENT_ID   an ACTIVE agent's id
//   BROKKR_AGENT_KEY  that agent's key
//   BROKKR_STACK      name of the stack to create
//   BROKKR_PROTO_DIR  the repository's proto/ directory (default: ../../../proto from this file)
// Output: one JSON object on stdout describing what happened; exit status 1 with the error on stderr.

import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = process.env.BROKKR_PROTO_DIR ?? path.resolve(here, "../../../proto");
const includeDirs = [protoDir, path.join(protoDir, "vendor")];
const required = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const server = required("BROKKR_SERVER");
const adminKey = required("BROKKR_ADMIN_KEY");
const agentId = required("BROKKR_AGENT_ID");
const agentKey = required("BROKKR_AGENT_KEY");
const stackName = required("BROKKR_STACK");

// --- loading the API ----------------------------------------------------------------------------

const services = [
  "brokkr/v1/auth_service.proto",
  "brokkr/v1/stack_service.proto",
  "brokkr/v1/deployment_object_service.proto",
  "brokkr/v1/deployment_status_service.proto",
  "brokkr/v1/target_service.proto",
  "brokkr/v1/agent_session_service.proto",
];
const definition = protoLoader.loadSync(services, {
  includeDirs,
  keepCase: true, // field names as in the .proto (snake_case)
  longs: String, // int64 as decimal strings: sequence ids survive JSON
  enums: String,
  defaults: true,
  oneofs: true, // a oneof's set member is named in a virtual field (e.g. message: "welcome")
});
const v1 = grpc.loadPackageDefinition(definition).brokkr.v1;

// google.rpc.Status and its details, for reading the broker's errors (AIP-193).
const errorTypes = new protobuf.Root();
errorTypes.resolvePath = (_origin, target) =>
  includeDirs.map((dir) => path.join(dir, target)).find((file) => protobuf.util.fs.existsSync(file)) ?? target;
errorTypes.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = errorTypes.lookupType("google.rpc.Status");
const details = {
  "type.googleapis.com/google.rpc.ErrorInfo": errorTypes.lookupType("google.rpc.ErrorInfo"),
  "type.googleapis.com/google.rpc.BadRequest": errorTypes.lookupType("google.rpc.BadRequest"),
};

/** The broker's error as {code, message, reason, field_violations}, from the status details trailer. */
function richError(error) {
  const result = { code: grpc.status[error.code], message: error.details };
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!raw) return result;
  for (const any of Status.decode(raw).details) {
    const type = details[any.type_url ?? any.typeUrl];
    if (!type) continue;
    const detail = type.toObject(type.decode(any.value));
    if (detail.reason !== undefined) result.reason = detail.reason;
    if (detail.fieldViolations) result.field_violations = detail.fieldViolations.map((v) => v.field);
  }
  return result;
}

// --- calling it -----------------------------------------------------------------------------------

const credentials = grpc.credentials.createInsecure();
const client = (Service) => new Service(server, credentials);
const auth = client(v1.AuthService);
const stacks = client(v1.StackService);
const deploymentObjects = client(v1.DeploymentObjectService);
const statuses = client(v1.DeploymentStatusService);
const targets = client(v1.TargetService);
const sessions = client(v1.AgentSessionService);

const bearer = (key) => {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${key}`);
  return metadata;
};

/** Promise of a unary call with the key in the metadata and a 10 s deadline. */
const call = (stub, method, request, key = adminKey) =>
  new Promise((resolve, reject) => {
    stub[method](request, bearer(key), { deadline: Date.now() + 10_000 }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });

const statusOf = async () => {
  const reply = await call(statuses, "ListDeploymentStatuses", { stack_id: stack.id });
  return reply.deployment_statuses.find((s) => s.agent_id === agentId);
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const watchdog = setTimeout(() => {
  console.error("timed out after 60 s");
  process.exit(1);
}, 60_000);

const whoami = await call(auth, "WhoAmI", {});

let invalid;
try {
  await call(stacks, "CreateStack", { stack: { name: "Not A DNS Label" } });
} catch (error) {
  invalid = richError(error);
}

const stack = (await call(stacks, "CreateStack", { stack: { name: stackName, description: "from Node.js" } })).stack;
await call(targets, "CreateTarget", { agent_id: agentId, stack_id: stack.id });
const yaml = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-node\n  namespace: demo\ndata:\n  greeting: hello\n`;
const created = (
  await call(deploymentObjects, "CreateDeploymentObject", { stack_id: stack.id, deployment_object: { yaml_content: yaml } })
).deployment_object;
const before = await statusOf();

// --- the agent session ----------------------------------------------------------------------------

const session = await new Promise((resolve, reject) => {
  const stream = sessions.Connect(bearer(agentKey));
  const seen = { messages: [] };
  stream.on("data", (response) => {
    seen.messages.push(response.message);
    if (response.message === "welcome") {
      seen.welcome_agent_id = response.welcome.agent_id;
    } else if (response.message === "stack_update" && response.stack_update.stack_id === stack.id) {
      const update = response.stack_update;
      seen.update = {
        sequence_id: update.deployment_object.sequence_id,
        checksum: update.deployment_object.checksum,
        full_state: update.full_state,
        apply: update.apply.map((m) => `${m.key.kind}/${m.key.namespace}/${m.key.name}`),
        nonce_present: response.nonce.length > 0,
      };
      stream.write({
        ack: {
          nonce: response.nonce,
          stack_id: update.stack_id,
          deployment_object: update.deployment_object,
          results: update.apply.map((m) => ({ key: m.key, outcome: "RESOURCE_OUTCOME_CREATED" })),
        },
      });
      stream.write({
        health_report: {
          stacks: [{ stack_id: update.stack_id, deployment_object: update.deployment_object, health: "HEALTH_STATUS_HEALTHY" }],
        },
      });
      resolve({ stream, seen });
    }
  });
  stream.on("error", (error) => {
    if (error.code !== grpc.status.CANCELLED) reject(error);
  });
  stream.write({ hello: { agent_version: "node-client-test", capabilities: [], stacks: [] } });
});

let after = await statusOf();
for (let attempt = 0; attempt < 100 && !(after?.state === "DEPLOYMENT_STATE_APPLIED" && after.health === "HEALTH_STATUS_HEALTHY"); attempt++) {
  await sleep(100);
  after = await statusOf();
}
session.stream.cancel();
clearTimeout(watchdog);

process.stdout.write(
  JSON.stringify({
    whoami: { role: whoami.role, principal_name: whoami.principal_name },
    invalid_stack_error: invalid,
    stack: { id: stack.id, name: stack.name },
    deployment_object: { id: created.id, sequence_id: created.sequence_id, checksum: created.checksum },
    status_before: before?.state ?? null,
    session: session.seen,
    status_after: {
      state: after?.state,
      applied_sequence_id: after?.applied_deployment_object?.sequence_id,
      health: after?.health,
    },
  }) + "\n",
);
for (const stub of [auth, stacks, deploymentObjects, statuses, targets, sessions]) stub.close();
