import type { Settings } from '../events/settings.ts';

/**
 * The dashboard (infra/dashboard.json) for one configuration: its `env` template variable lists
 * the production environments (the first the default), and its daily figures name the reporting
 * time zone. infra/datadog.tf does the same to the same file for Terraform.
 */
export function dashboardFor<T extends Record<string, unknown>>(dashboard: T, settings: Settings): T {
  const text = JSON.stringify(dashboard).replaceAll('days in UTC', `days in ${settings.timezone}`);
  const tailored = JSON.parse(text) as T & { template_variables?: Array<Record<string, unknown>> };
  tailored.template_variables = (tailored.template_variables ?? []).map((variable) =>
    variable.name === 'env'
      ? {
          ...variable,
          default: settings.productionEnvironments[0],
          available_values: [...settings.productionEnvironments],
        }
      : variable,
  );
  return tailored;
}
