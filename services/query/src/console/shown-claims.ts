/** The claims of the requester's session an approver is shown (GitHub Actions and GitLab CI names). */
export const SHOWN_CLAIMS = ['repository', 'workflow', 'ref', 'actor', 'run_id', 'project_path', 'pipeline_source', 'environment'] as const;
