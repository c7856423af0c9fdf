import type { AppRecord, DeployBranch } from '../store/records.js';
import { headCommit } from './repo.js';

export const DEPLOY_BRANCHES: readonly DeployBranch[] = ['main', 'master'];

/**
 * The app's one deploy branch: the one recorded at its first push; for apps from before that was
 * recorded, whichever of main and master the repo has (main when both); undefined before any push,
 * when either may start it.
 */
export async function deployBranch(app: AppRecord, repo: string): Promise<DeployBranch | undefined> {
  if (app.branch) return app.branch;
  for (const branch of DEPLOY_BRANCHES) if ((await headCommit(repo, branch)) !== undefined) return branch;
  return undefined;
}
