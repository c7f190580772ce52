/** cli/cluster — a throwaway local deployment (CA, configs, server child processes, leaves). */
export {
  BIN,
  GROUP,
  LocalCluster,
  childNodeArgs,
  freePorts,
  until,
  type LocalLeaf,
  type Member,
  type ServerProc,
} from './local-cluster.js';
